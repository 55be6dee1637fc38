import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { ApiServer } from '../../e2e/apiserver/index.ts';
import {
  decideLeaseAction,
  defaultLeaderIdentity,
  type LeaderElectionOutcome,
  LeaderElector,
  nextLeaseSpec,
  validateLeaderElectionTiming,
} from './leader-election.ts';
import { kubeConfigFor, startTestApiServer, testLogger, waitFor } from './testing/harness.ts';

function lease(holder: string, durationSeconds = 15, transitions = 0): V1Lease {
  return {
    metadata: { name: 'l', namespace: 'ns', resourceVersion: '7' },
    spec: { holderIdentity: holder, leaseDurationSeconds: durationSeconds, leaseTransitions: transitions },
  };
}

describe('leader election decisions', () => {
  test('a missing lease is created', () => {
    assert.equal(decideLeaseAction(undefined, 'me', 0, 0, 15_000), 'create');
  });

  test('our own lease is renewed', () => {
    assert.equal(decideLeaseAction(lease('me'), 'me', 100_000, 0, 15_000), 'renew');
  });

  test('a lease without holder (released) is taken at once', () => {
    assert.equal(decideLeaseAction(lease(''), 'me', 1, 1, 15_000), 'take');
  });

  test("another holder's lease is waited on until a full lease duration passed since we saw it change", () => {
    assert.equal(decideLeaseAction(lease('other', 15), 'me', 14_999, 0, 3_000), 'wait');
    assert.equal(decideLeaseAction(lease('other', 15), 'me', 15_000, 0, 3_000), 'take');
  });

  test('renewing keeps the term; taking over starts a new one and counts a transition', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const held = { ...lease('me', 15, 3), spec: { ...lease('me', 15, 3).spec, acquireTime: new Date(0) } };
    const renewed = nextLeaseSpec(held, 'renew', 'me', 15_000, now);
    assert.equal(renewed.leaseTransitions, 3);
    assert.deepEqual(renewed.acquireTime, new Date(0));
    assert.equal(renewed.renewTime?.getTime(), now.getTime());
    const taken = nextLeaseSpec(lease('other', 15, 3), 'take', 'me', 3_000, now);
    assert.equal(taken.holderIdentity, 'me');
    assert.equal(taken.leaseTransitions, 4);
    assert.equal(taken.leaseDurationSeconds, 3);
    assert.equal(taken.acquireTime?.getTime(), now.getTime());
    assert.equal(nextLeaseSpec(undefined, 'create', 'me', 15_000, now).leaseTransitions, 0);
  });

  test('renew times are written with microsecond precision, as MicroTime requires', () => {
    const spec = nextLeaseSpec(undefined, 'create', 'me', 15_000, new Date('2026-01-01T00:00:00.123Z'));
    assert.equal(JSON.stringify(spec.renewTime), '"2026-01-01T00:00:00.123000Z"');
  });

  test('timing must order retry period < renew deadline < lease duration, in whole lease seconds', () => {
    assert.deepEqual(
      validateLeaderElectionTiming({
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
      }),
      [],
    );
    assert.deepEqual(
      validateLeaderElectionTiming({ leaseDurationMs: 3_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 }),
      [
        '--leader-elect-renew-deadline: Invalid value: "3s": must be less than --leader-elect-lease-duration (3s)',
      ],
    );
    assert.match(
      validateLeaderElectionTiming({
        leaseDurationMs: 2_500,
        renewDeadlineMs: 2_000,
        retryPeriodMs: 500,
      }).join('\n'),
      /--leader-elect-lease-duration: Invalid value: "2.5s": must be a whole number of seconds/,
    );
    assert.match(
      validateLeaderElectionTiming({ leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 0 }).join(
        '\n',
      ),
      /--leader-elect-retry-period: Invalid value: "0s": must be greater than zero/,
    );
  });

  test('default identities are the hostname plus a random suffix, different per process', () => {
    const a = defaultLeaderIdentity();
    assert.match(a, /^.+_[0-9a-f]{8}$/);
    assert.notEqual(a, defaultLeaderIdentity());
  });
});

describe('LeaderElector against the local API server', () => {
  const namespace = 'default';
  const timing = { leaseDurationMs: 2_000, renewDeadlineMs: 1_200, retryPeriodMs: 200 };
  let server: ApiServer;
  let kubeConfig: KubeConfig;
  let coordination: CoordinationV1Api;
  const aborts: AbortController[] = [];

  before(async () => {
    server = await startTestApiServer();
    kubeConfig = kubeConfigFor(server.kubeconfigPath);
    coordination = kubeConfig.makeApiClient(CoordinationV1Api);
  });

  after(async () => {
    for (const abort of aborts) abort.abort();
    await server?.close();
  });

  function candidate(leaseName: string, identity: string) {
    const abort = new AbortController();
    aborts.push(abort);
    let startedAt: number | undefined;
    const elector = new LeaderElector({
      kubeConfig,
      namespace,
      leaseName,
      identity,
      timing,
      logger: testLogger(),
      onStartedLeading: () => {
        startedAt = Date.now();
      },
    });
    let outcome: LeaderElectionOutcome | undefined;
    let endedAt: number | undefined;
    const finished = elector.run(abort.signal).then((result) => {
      outcome = result;
      endedAt = Date.now();
      return result;
    });
    return {
      elector,
      abort,
      finished,
      startedAt: () => startedAt,
      outcome: () => outcome,
      endedAt: () => endedAt,
    };
  }

  async function holder(leaseName: string): Promise<string> {
    const current = await coordination.readNamespacedLease({ name: leaseName, namespace });
    return current.spec?.holderIdentity ?? '';
  }

  test('of three candidates racing for a new lease exactly one leads, and keeps renewing', async () => {
    const candidates = ['a', 'b', 'c'].map((identity) => candidate('race', identity));
    await waitFor(() => candidates.some((c) => c.elector.isLeader()), 'a leader');
    // Several renew periods later there is still exactly one leader, and it is the holder.
    await new Promise((resolve) => setTimeout(resolve, 3 * timing.retryPeriodMs));
    const leaders = candidates.filter((c) => c.elector.isLeader());
    assert.equal(leaders.length, 1);
    assert.equal(await holder('race'), leaders[0]!.elector.identity);
    for (const c of candidates) c.abort.abort();
    await Promise.all(candidates.map((c) => c.finished));
  });

  test('a standby takes an abandoned lease only after the lease duration', async () => {
    const first = candidate('abandon', 'first');
    await waitFor(() => first.elector.isLeader(), 'first to lead');
    // Abort without release: like a crash, the lease stays held until it expires.
    first.abort.abort();
    const abandonedAt = Date.now();
    const second = candidate('abandon', 'second');
    await waitFor(() => second.elector.isLeader(), 'second to lead', 10_000);
    const waited = second.startedAt()! - abandonedAt;
    assert.ok(waited >= timing.leaseDurationMs - timing.retryPeriodMs, `took over after ${waited} ms`);
    assert.ok(waited < timing.leaseDurationMs + 3 * timing.retryPeriodMs, `took over after ${waited} ms`);
    const current = await coordination.readNamespacedLease({ name: 'abandon', namespace });
    assert.equal(current.spec?.holderIdentity, 'second');
    assert.equal(current.spec?.leaseTransitions, 1);
    second.abort.abort();
    await second.finished;
  });

  test('a released lease is taken over at the next retry', async () => {
    const first = candidate('release', 'first');
    await waitFor(() => first.elector.isLeader(), 'first to lead');
    const second = candidate('release', 'second');
    await new Promise((resolve) => setTimeout(resolve, 2 * timing.retryPeriodMs));
    assert.equal(second.elector.isLeader(), false);
    first.abort.abort();
    await first.finished;
    await first.elector.release();
    const releasedAt = Date.now();
    assert.equal(first.elector.isLeader(), false);
    await waitFor(() => second.elector.isLeader(), 'second to lead');
    assert.ok(Date.now() - releasedAt < 2 * timing.retryPeriodMs + 200);
    second.abort.abort();
    await second.finished;
  });

  test('a leader that cannot renew gives up within the renew deadline, before its lease expires', async () => {
    const leader = candidate('deadline', 'leader');
    await waitFor(() => leader.elector.isLeader(), 'the leader');
    const lastRenew = Date.now();
    server.faults.failNext(1000, { code: 500 });
    try {
      await waitFor(() => leader.outcome() !== undefined, 'the leader to give up', 5_000);
    } finally {
      // Drain the remaining injected failures so later tests start clean.
      let pending = await server.faults.beforeRequest();
      while (pending !== undefined) {
        pending = await server.faults.beforeRequest();
      }
    }
    assert.equal(leader.outcome(), 'lost');
    assert.equal(leader.elector.isLeader(), false);
    const gaveUpAfter = leader.endedAt()! - lastRenew;
    assert.ok(gaveUpAfter < timing.leaseDurationMs, `gave up ${gaveUpAfter} ms after its last renewal`);
  });

  test('a leader whose lease is taken over by another identity reports the loss', async () => {
    const leader = candidate('stolen', 'leader');
    await waitFor(() => leader.elector.isLeader(), 'the leader');
    const current = await coordination.readNamespacedLease({ name: 'stolen', namespace });
    await coordination.replaceNamespacedLease({
      name: 'stolen',
      namespace,
      body: { ...current, spec: { ...current.spec, holderIdentity: 'usurper' } },
    });
    assert.equal(await leader.finished, 'lost');
    assert.equal(await holder('stolen'), 'usurper');
  });
});
