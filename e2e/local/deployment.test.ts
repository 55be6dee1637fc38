import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Deployment, V1ReplicaSet } from '@kubernetes/client-node';
import {
  computePodTemplateHash,
  planDeployment,
  podTemplateHashLabel,
  resolveIntOrPercent,
  revisionAnnotation,
  templatesEqual,
} from './deployment.ts';

const now = Date.UTC(2026, 0, 1);

function deployment(options: {
  replicas: number;
  image?: string;
  maxSurge?: number | string;
  maxUnavailable?: number | string;
  recreate?: boolean;
}): V1Deployment {
  return {
    metadata: { name: 'web', namespace: 'default', uid: 'deploy-uid', generation: 2 },
    spec: {
      replicas: options.replicas,
      selector: { matchLabels: { app: 'web' } },
      strategy: options.recreate
        ? { type: 'Recreate' }
        : {
            type: 'RollingUpdate',
            rollingUpdate: {
              ...(options.maxSurge === undefined ? {} : { maxSurge: options.maxSurge }),
              ...(options.maxUnavailable === undefined ? {} : { maxUnavailable: options.maxUnavailable }),
            },
          },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [{ name: 'web', image: options.image ?? 'demo:v1', ports: [{ containerPort: 80 }] }],
        },
      },
    },
  };
}

describe('pod template hash', () => {
  test('is stable, vowel-free, ignores key order and its own label, and changes with the template', () => {
    const a = deployment({ replicas: 1 }).spec?.template;
    const reordered = { spec: a?.spec, metadata: { labels: { app: 'web' } } };
    const hash = computePodTemplateHash(a);
    assert.match(hash, /^[bcdfghjklmnpqrstvwxz2456789]+$/);
    assert.equal(computePodTemplateHash(reordered), hash);
    assert.equal(
      computePodTemplateHash({
        ...reordered,
        metadata: { labels: { app: 'web', [podTemplateHashLabel]: hash } },
      }),
      hash,
    );
    assert.notEqual(
      computePodTemplateHash(deployment({ replicas: 1, image: 'demo:v2' }).spec?.template),
      hash,
    );
    assert.notEqual(computePodTemplateHash(a, 1), hash, 'collisionCount changes the hash');
    assert.ok(templatesEqual(a, reordered));
  });
});

describe('resolveIntOrPercent', () => {
  const cases: [number | string | undefined, number, boolean, number][] = [
    [2, 10, true, 2],
    ['25%', 10, true, 3],
    ['25%', 10, false, 2],
    [undefined, 4, true, 1],
    ['0%', 4, false, 0],
  ];
  for (const [value, replicas, roundUp, expected] of cases) {
    test(`${String(value)} of ${replicas} rounded ${roundUp ? 'up' : 'down'} is ${expected}`, () => {
      assert.equal(
        resolveIntOrPercent(value, replicas, roundUp, 'spec.strategy.rollingUpdate.maxSurge', '25%'),
        expected,
      );
    });
  }
  test('rejects malformed values with the field path', () => {
    assert.throws(
      () => resolveIntOrPercent('abc', 3, true, 'spec.strategy.rollingUpdate.maxSurge', '25%'),
      /spec.strategy.rollingUpdate.maxSurge: Invalid value: "abc": a valid percent string/,
    );
    assert.throws(
      () => resolveIntOrPercent(-1, 3, true, 'spec.strategy.rollingUpdate.maxUnavailable', '25%'),
      /Invalid value: -1/,
    );
  });
});

/** Applies a plan as the API and a perfectly fast ReplicaSet controller would: status follows spec at once. */
function apply(
  replicaSets: V1ReplicaSet[],
  plan: ReturnType<typeof planDeployment>,
  tick: number,
): V1ReplicaSet[] {
  const next = replicaSets.map((rs) => structuredClone(rs));
  if (plan.createReplicaSet !== undefined) {
    const created = structuredClone(plan.createReplicaSet);
    created.metadata = { ...created.metadata, creationTimestamp: new Date(now + tick * 1000) };
    next.push(created);
  }
  for (const change of plan.scale) {
    const rs = next.find((candidate) => candidate.metadata?.name === change.name);
    assert.ok(rs?.spec, `scale targets an existing ReplicaSet: ${change.name}`);
    rs.spec.replicas = change.replicas;
  }
  return next;
}

function settle(replicaSets: V1ReplicaSet[]): V1ReplicaSet[] {
  return replicaSets.map((rs) => {
    const replicas = rs.spec?.replicas ?? 0;
    return { ...rs, status: { replicas, readyReplicas: replicas, availableReplicas: replicas } };
  });
}

function replicasByImage(replicaSets: V1ReplicaSet[]): Record<string, number> {
  return Object.fromEntries(
    replicaSets.map((rs) => [rs.spec?.template?.spec?.containers[0]?.image ?? '', rs.spec?.replicas ?? 0]),
  );
}

/** Rolls `from` to `to` one sync at a time, checking surge and availability bounds at every step. */
function rollOut(
  options: { replicas: number; maxSurge?: number | string; maxUnavailable?: number | string },
  bounds: { maxTotal: number; minAvailable: number },
): { steps: number; replicaSets: V1ReplicaSet[] } {
  let replicaSets: V1ReplicaSet[] = [];
  const v1 = deployment({ ...options, image: 'demo:v1' });
  for (let tick = 0; tick < 3; tick++)
    replicaSets = settle(apply(replicaSets, planDeployment(v1, replicaSets, now), tick));
  const v2 = deployment({ ...options, image: 'demo:v2' });
  for (let steps = 1; steps <= 50; steps++) {
    const plan = planDeployment(v2, replicaSets, now);
    replicaSets = apply(replicaSets, plan, 10 + steps);
    const total = replicaSets.reduce((sum, rs) => sum + (rs.spec?.replicas ?? 0), 0);
    assert.ok(total <= bounds.maxTotal, `step ${steps}: ${total} pods exceed ${bounds.maxTotal}`);
    replicaSets = settle(replicaSets);
    const available = replicaSets.reduce((sum, rs) => sum + (rs.status?.availableReplicas ?? 0), 0);
    assert.ok(
      available >= bounds.minAvailable,
      `step ${steps}: ${available} available < ${bounds.minAvailable}`,
    );
    const counts = replicasByImage(replicaSets);
    if (counts['demo:v2'] === options.replicas && counts['demo:v1'] === 0) return { steps, replicaSets };
  }
  assert.fail(`rollout did not converge: ${JSON.stringify(replicasByImage(replicaSets))}`);
}

describe('planDeployment', () => {
  test('a new Deployment gets one ReplicaSet at full scale, labelled, owned and at revision 1', () => {
    const plan = planDeployment(deployment({ replicas: 3 }), [], now);
    const rs = plan.createReplicaSet;
    const hash = computePodTemplateHash(deployment({ replicas: 3 }).spec?.template);
    assert.equal(rs?.metadata?.name, `web-${hash}`);
    assert.equal(rs?.spec?.replicas, 3);
    assert.deepEqual(rs?.spec?.selector?.matchLabels, { app: 'web', [podTemplateHashLabel]: hash });
    assert.deepEqual(rs?.spec?.template?.metadata?.labels, { app: 'web', [podTemplateHashLabel]: hash });
    assert.equal(rs?.metadata?.annotations?.[revisionAnnotation], '1');
    assert.deepEqual(rs?.metadata?.ownerReferences?.[0], {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'web',
      uid: 'deploy-uid',
      controller: true,
      blockOwnerDeletion: true,
    });
    assert.deepEqual(plan.scale, []);
  });

  test('scaling with a single ReplicaSet sets its replicas directly, up and down', () => {
    const [rs] = settle([
      planDeployment(deployment({ replicas: 3 }), [], now).createReplicaSet as V1ReplicaSet,
    ]);
    assert.ok(rs !== undefined);
    assert.deepEqual(planDeployment(deployment({ replicas: 10 }), [rs], now).scale, [
      { name: rs.metadata?.name, replicas: 10 },
    ]);
    assert.deepEqual(planDeployment(deployment({ replicas: 2 }), [rs], now).scale, [
      { name: rs.metadata?.name, replicas: 2 },
    ]);
    assert.deepEqual(
      planDeployment(deployment({ replicas: 3 }), [rs], now).scale,
      [],
      'idempotent when converged',
    );
  });

  test('status sums the ReplicaSets and reports availability', () => {
    const [rs] = settle([
      planDeployment(deployment({ replicas: 4 }), [], now).createReplicaSet as V1ReplicaSet,
    ]);
    assert.ok(rs !== undefined);
    const half = { ...rs, status: { replicas: 4, readyReplicas: 2, availableReplicas: 2 } };
    const status = planDeployment(deployment({ replicas: 4 }), [half], now).status;
    assert.equal(status.replicas, 4);
    assert.equal(status.updatedReplicas, 4);
    assert.equal(status.readyReplicas, 2);
    assert.equal(status.availableReplicas, 2);
    assert.equal(status.unavailableReplicas, 2);
    assert.equal(status.observedGeneration, 2);
    assert.equal(status.conditions?.[0]?.status, 'False', '2 available < 4 - 1 (25% rounded down)');
    const full = planDeployment(deployment({ replicas: 4 }), [rs], now).status;
    assert.deepEqual(
      [full.conditions?.[0]?.type, full.conditions?.[0]?.status, full.conditions?.[0]?.reason],
      ['Available', 'True', 'MinimumReplicasAvailable'],
    );
  });

  test('a template change creates a new ReplicaSet at the next revision', () => {
    const [v1] = settle([
      planDeployment(deployment({ replicas: 3 }), [], now).createReplicaSet as V1ReplicaSet,
    ]);
    assert.ok(v1 !== undefined);
    const plan = planDeployment(
      deployment({ replicas: 3, image: 'demo:v2', maxSurge: 1, maxUnavailable: 0 }),
      [v1],
      now,
    );
    assert.equal(plan.createReplicaSet?.metadata?.annotations?.[revisionAnnotation], '2');
    assert.equal(plan.createReplicaSet?.spec?.replicas, 1, 'surges by one');
    assert.deepEqual(plan.scale, [], 'no old replica goes before a new one is available');
  });

  const rollouts: {
    name: string;
    options: { replicas: number; maxSurge?: number | string; maxUnavailable?: number | string };
    bounds: { maxTotal: number; minAvailable: number };
  }[] = [
    {
      name: 'maxSurge 1, maxUnavailable 0 keeps all 3 available',
      options: { replicas: 3, maxSurge: 1, maxUnavailable: 0 },
      bounds: { maxTotal: 4, minAvailable: 3 },
    },
    {
      name: 'maxSurge 0, maxUnavailable 1 never exceeds 3 pods',
      options: { replicas: 3, maxSurge: 0, maxUnavailable: 1 },
      bounds: { maxTotal: 3, minAvailable: 2 },
    },
    {
      name: 'defaults (25%/25%) on 10 replicas',
      options: { replicas: 10 },
      bounds: { maxTotal: 13, minAvailable: 8 },
    },
    {
      name: 'percentages 50%/50% on 4 replicas',
      options: { replicas: 4, maxSurge: '50%', maxUnavailable: '50%' },
      bounds: { maxTotal: 6, minAvailable: 2 },
    },
    {
      name: 'both zero: maxUnavailable becomes 1',
      options: { replicas: 2, maxSurge: 0, maxUnavailable: 0 },
      bounds: { maxTotal: 2, minAvailable: 1 },
    },
  ];
  for (const rollout of rollouts) {
    test(`rolling update converges within bounds: ${rollout.name}`, () => {
      const { replicaSets } = rollOut(rollout.options, rollout.bounds);
      assert.equal(replicaSets.length, 2);
    });
  }

  test('Recreate scales the old ReplicaSet to zero before the new one gets replicas', () => {
    let replicaSets = settle([
      planDeployment(deployment({ replicas: 3 }), [], now).createReplicaSet as V1ReplicaSet,
    ]);
    const v2 = deployment({ replicas: 3, image: 'demo:v2', recreate: true });
    const first = planDeployment(v2, replicaSets, now);
    assert.equal(first.createReplicaSet?.spec?.replicas, 0);
    assert.deepEqual(
      first.scale.map((s) => s.replicas),
      [0],
    );
    replicaSets = settle(apply(replicaSets, first, 1));
    const second = planDeployment(v2, replicaSets, now);
    assert.deepEqual(second.scale, [{ name: first.createReplicaSet?.metadata?.name, replicas: 3 }]);
  });
});
