import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { makePod, makeService } from './test-fixtures.ts';
import { TriggerTimeTracker } from './trigger-time.ts';

function podReadySince(name: string, time: string): V1Pod {
  const pod = makePod({ name, ips: ['198.18.0.1'] });
  pod.status!.conditions![0]!.lastTransitionTime = new Date(time);
  return pod;
}

const service = makeService();
service.metadata!.creationTimestamp = new Date('2026-11-24T10:00:00Z');

describe('TriggerTimeTracker', () => {
  test('first sync: the earliest of the Service creation and the pods', () => {
    const tracker = new TriggerTimeTracker();
    const time = tracker.compute('default/web', service, [podReadySince('a', '2026-11-24T11:00:00Z')]);
    assert.deepEqual(time, new Date('2026-11-24T10:00:00Z'));
  });

  test('nothing changed: no trigger time', () => {
    const tracker = new TriggerTimeTracker();
    const pods = [podReadySince('a', '2026-11-24T11:00:00Z')];
    tracker.compute('default/web', service, pods);
    assert.equal(tracker.compute('default/web', service, pods), undefined);
  });

  test('the earliest of the pods whose readiness moved forward', () => {
    const tracker = new TriggerTimeTracker();
    tracker.compute('default/web', service, [
      podReadySince('a', '2026-11-24T11:00:00Z'),
      podReadySince('b', '2026-11-24T11:00:00Z'),
      podReadySince('c', '2026-11-24T11:00:00Z'),
    ]);
    const time = tracker.compute('default/web', service, [
      podReadySince('a', '2026-11-24T11:00:00Z'),
      podReadySince('b', '2026-11-24T12:00:05Z'),
      podReadySince('c', '2026-11-24T12:00:01Z'),
    ]);
    assert.deepEqual(time, new Date('2026-11-24T12:00:01Z'));
  });

  test('a new pod counts; a forgotten Service starts over; timestamps may be strings', () => {
    const tracker = new TriggerTimeTracker();
    tracker.compute('default/web', service, []);
    const plain = podReadySince('new', '2026-11-24T12:30:00Z');
    (plain.status!.conditions![0] as { lastTransitionTime: unknown }).lastTransitionTime =
      '2026-11-24T12:30:00Z';
    assert.deepEqual(tracker.compute('default/web', service, [plain]), new Date('2026-11-24T12:30:00Z'));
    tracker.forget('default/web');
    assert.deepEqual(tracker.compute('default/web', service, [plain]), new Date('2026-11-24T10:00:00Z'));
  });
});
