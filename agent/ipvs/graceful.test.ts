import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ConnectionCounts, planRealServers, type RealServerPlanInput } from './graceful.ts';

const A = '10.244.1.5:8080';
const B = '10.244.1.6:8080';

function input(overrides: Partial<RealServerPlanInput>): RealServerPlanInput {
  return {
    protocol: 'TCP',
    current: new Map(),
    desired: new Set(),
    draining: new Map(),
    now: 0,
    connections: new Map(),
    drainTimeoutMs: 60_000,
    ...overrides,
  };
}

const busy: ConnectionCounts = { active: 2, inactive: 1 };
const idle: ConnectionCounts = { active: 0, inactive: 0 };

describe('graceful termination of real servers', () => {
  // Steps run in order against one evolving state, each a sentence.
  test('a TCP endpoint that leaves drains at weight 0 and is deleted once its connections end', () => {
    let current = new Map([
      [A, 1],
      [B, 1],
    ]);
    const step1 = planRealServers(
      input({ current, desired: new Set([A]), now: 1000, connections: new Map([[B, busy]]) }),
    );
    assert.deepEqual(step1.operations, [{ kind: 'drain', realServer: B }], 'B leaves: weight 0');
    assert.deepEqual([...step1.draining], [[B, 1000]]);
    current = new Map([
      [A, 1],
      [B, 0],
    ]);
    const step2 = planRealServers(
      input({
        current,
        desired: new Set([A]),
        draining: step1.draining,
        now: 5000,
        connections: new Map([[B, busy]]),
      }),
    );
    assert.deepEqual(step2.operations, [], 'B still has connections: kept at weight 0');
    assert.deepEqual([...step2.draining], [[B, 1000]]);
    const step3 = planRealServers(
      input({
        current,
        desired: new Set([A]),
        draining: step2.draining,
        now: 9000,
        connections: new Map([[B, idle]]),
      }),
    );
    assert.deepEqual(step3.operations, [{ kind: 'delete', realServer: B }], 'B drained: deleted');
    assert.deepEqual([...step3.draining], []);
  });

  test('a draining real server is deleted after the timeout even with connections left', () => {
    const plan = planRealServers(
      input({
        current: new Map([[B, 0]]),
        draining: new Map([[B, 0]]),
        now: 60_000,
        connections: new Map([[B, busy]]),
      }),
    );
    assert.deepEqual(plan.operations, [{ kind: 'delete', realServer: B }]);
  });

  test('unknown connection counts keep a server draining (never deleted early)', () => {
    const plan = planRealServers(input({ current: new Map([[B, 0]]), draining: new Map([[B, 0]]), now: 10 }));
    assert.deepEqual(plan.operations, []);
  });

  test('an endpoint that comes back while draining gets its weight back and leaves the drain list', () => {
    const plan = planRealServers(
      input({ current: new Map([[B, 0]]), desired: new Set([B]), draining: new Map([[B, 0]]), now: 10 }),
    );
    assert.deepEqual(plan.operations, [{ kind: 'restore-weight', realServer: B }]);
    assert.deepEqual([...plan.draining], []);
  });

  test('UDP and SCTP real servers are deleted at once', () => {
    for (const protocol of ['UDP', 'SCTP'] as const) {
      const plan = planRealServers(
        input({ protocol, current: new Map([[B, 1]]), connections: new Map([[B, busy]]) }),
      );
      assert.deepEqual(plan.operations, [{ kind: 'delete', realServer: B }], protocol);
    }
  });

  test('new endpoints are added; unchanged ones produce nothing', () => {
    const plan = planRealServers(input({ current: new Map([[A, 1]]), desired: new Set([A, B]) }));
    assert.deepEqual(plan.operations, [{ kind: 'add', realServer: B }]);
  });
});
