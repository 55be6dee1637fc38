import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Pod, V1ReplicaSet } from '@kubernetes/client-node';
import { selectorMatches } from './labels.ts';
import {
  compareForDeletion,
  maxWriteBatch,
  orphansToAdopt,
  planReplicaSet,
  slowStartBatchSizes,
} from './replicaset.ts';

const now = Date.UTC(2026, 0, 1, 12, 0, 0);

function replicaSet(replicas: number, minReadySeconds = 0): V1ReplicaSet {
  return {
    metadata: { name: 'web-abc', namespace: 'default', uid: 'rs-uid', generation: 4 },
    spec: {
      replicas,
      minReadySeconds,
      selector: { matchLabels: { app: 'web', 'pod-template-hash': 'abc' } },
      template: {
        metadata: { labels: { app: 'web', 'pod-template-hash': 'abc' } },
        spec: { containers: [{ name: 'web', image: 'demo', ports: [{ containerPort: 80 }] }] },
      },
    },
  };
}

interface PodOptions {
  node?: string;
  phase?: string;
  readySecondsAgo?: number;
  createdSecondsAgo?: number;
  owner?: string | null;
  deleting?: boolean;
  labels?: Record<string, string>;
}

function pod(name: string, options: PodOptions = {}): V1Pod {
  const owner = options.owner === undefined ? 'rs-uid' : options.owner;
  return {
    metadata: {
      name,
      namespace: 'default',
      labels: options.labels ?? { app: 'web', 'pod-template-hash': 'abc' },
      creationTimestamp: new Date(now - (options.createdSecondsAgo ?? 100) * 1000),
      ...(owner === null
        ? {}
        : {
            ownerReferences: [
              { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc', uid: owner, controller: true },
            ],
          }),
      ...(options.deleting === true ? { deletionTimestamp: new Date(now) } : {}),
    },
    spec: {
      containers: [{ name: 'web' }],
      ...(options.node === undefined ? {} : { nodeName: options.node }),
    },
    status: {
      phase: options.phase ?? (options.node === undefined ? 'Pending' : 'Running'),
      conditions:
        options.readySecondsAgo === undefined
          ? [{ type: 'Ready', status: 'False' }]
          : [
              {
                type: 'Ready',
                status: 'True',
                lastTransitionTime: new Date(now - options.readySecondsAgo * 1000),
              },
            ],
    },
  };
}

const names = (pods: V1Pod[]) => pods.map((p) => p.metadata?.name);

describe('planReplicaSet', () => {
  const cases: { name: string; replicas: number; pods: V1Pod[]; create: number; delete: string[] }[] = [
    { name: 'creates every replica for a new ReplicaSet', replicas: 3, pods: [], create: 3, delete: [] },
    {
      name: 'creates only the missing replicas; deleting and terminal pods do not count',
      replicas: 3,
      pods: [
        pod('a', { node: 'n0', readySecondsAgo: 5 }),
        pod('gone', { node: 'n0', deleting: true }),
        pod('done', { node: 'n0', phase: 'Succeeded' }),
      ],
      create: 2,
      delete: [],
    },
    {
      name: 'ignores pods another controller owns',
      replicas: 1,
      pods: [pod('other', { owner: 'someone-else', node: 'n0', readySecondsAgo: 5 })],
      create: 1,
      delete: [],
    },
    {
      name: 'deletes unscheduled first, then not ready, then newest',
      replicas: 1,
      pods: [
        pod('old-ready', { node: 'n0', readySecondsAgo: 50, createdSecondsAgo: 90 }),
        pod('new-ready', { node: 'n0', readySecondsAgo: 50, createdSecondsAgo: 10 }),
        pod('unready', { node: 'n1' }),
        pod('unscheduled'),
      ],
      create: 0,
      delete: ['unscheduled', 'unready', 'new-ready'],
    },
    {
      name: 'among ready pods, the one ready for less time goes first',
      replicas: 1,
      pods: [
        pod('long', { node: 'n0', readySecondsAgo: 80, createdSecondsAgo: 10 }),
        pod('short', { node: 'n0', readySecondsAgo: 2, createdSecondsAgo: 90 }),
      ],
      create: 0,
      delete: ['short'],
    },
    {
      name: 'Pending goes before Running',
      replicas: 1,
      pods: [
        pod('running', { node: 'n0', phase: 'Running' }),
        pod('pending', { node: 'n0', phase: 'Pending' }),
      ],
      create: 0,
      delete: ['pending'],
    },
    { name: 'caps a sync at 500 creations', replicas: 1200, pods: [], create: 500, delete: [] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const plan = planReplicaSet(replicaSet(c.replicas), c.pods, now);
      assert.equal(plan.create.length, c.create);
      assert.deepEqual(names(plan.delete), c.delete);
    });
  }

  test('created pods carry the template, generateName and a controller ownerReference', () => {
    const [created] = planReplicaSet(replicaSet(1), [], now).create;
    assert.deepEqual(created?.metadata, {
      generateName: 'web-abc-',
      namespace: 'default',
      labels: { app: 'web', 'pod-template-hash': 'abc' },
      annotations: {},
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: 'web-abc',
          uid: 'rs-uid',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    });
    assert.equal(created?.spec?.containers[0]?.ports?.[0]?.containerPort, 80);
  });

  test('status counts replicas, ready and available (minReadySeconds) pods', () => {
    const pods = [
      pod('fresh', { node: 'n0', readySecondsAgo: 3 }),
      pod('settled', { node: 'n0', readySecondsAgo: 30 }),
      pod('unready', { node: 'n0' }),
      pod('relabeled', { node: 'n0', labels: { app: 'web' } }),
    ];
    assert.deepEqual(planReplicaSet(replicaSet(4, 10), pods, now).status, {
      replicas: 4,
      fullyLabeledReplicas: 3,
      readyReplicas: 2,
      availableReplicas: 1,
      observedGeneration: 4,
    });
  });

  test('compareForDeletion is a total order that ranks a pod equal to itself', () => {
    const a = pod('a', { node: 'n0', readySecondsAgo: 5 });
    assert.equal(compareForDeletion(a, a), 0);
  });
});

describe('orphansToAdopt', () => {
  test('adopts only matching, live pods without a controller', () => {
    const pods = [
      pod('orphan', { owner: null }),
      pod('owned', {}),
      pod('stray', { owner: null, labels: { app: 'web' } }),
      pod('dying-orphan', { owner: null, deleting: true }),
    ];
    assert.deepEqual(names(orphansToAdopt(replicaSet(3), pods)), ['orphan']);
  });
});

describe('selectorMatches', () => {
  const labels = { app: 'web', tier: 'front' };
  const cases: [string, Parameters<typeof selectorMatches>[0], boolean][] = [
    ['missing selector matches nothing', undefined, false],
    ['empty selector matches everything', {}, true],
    ['matchLabels', { matchLabels: { app: 'web' } }, true],
    ['matchLabels mismatch', { matchLabels: { app: 'db' } }, false],
    ['In', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] }, true],
    ['NotIn', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] }, false],
    ['Exists', { matchExpressions: [{ key: 'app', operator: 'Exists' }] }, true],
    ['DoesNotExist', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, false],
  ];
  for (const [name, selector, expected] of cases) {
    test(name, () => assert.equal(selectorMatches(selector, labels), expected));
  }
  test('unknown operators are rejected the way the API phrases it', () => {
    assert.throws(
      () => selectorMatches({ matchExpressions: [{ key: 'a', operator: 'Gt' }] }, labels),
      /operator: Unsupported value: "Gt": supported values: "In", "NotIn", "Exists", "DoesNotExist"/,
    );
  });
});

describe('slowStartBatchSizes', () => {
  test('doubles from 1 like upstream, capped, and adds up to the total', () => {
    assert.deepEqual(slowStartBatchSizes(0), []);
    assert.deepEqual(slowStartBatchSizes(1), [1]);
    assert.deepEqual(slowStartBatchSizes(10), [1, 2, 4, 3]);
    const burst = slowStartBatchSizes(500);
    assert.deepEqual(burst.slice(0, 7), [1, 2, 4, 8, 16, 32, 32]);
    assert.equal(Math.max(...burst), maxWriteBatch);
    assert.equal(
      burst.reduce((sum, size) => sum + size, 0),
      500,
    );
  });
});
