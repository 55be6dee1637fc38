import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { buildRunningPodStatus, readinessOverrideAnnotation } from './pod-status.ts';

const started = new Date(Date.UTC(2026, 0, 1, 10, 0, 0));
const later = new Date(Date.UTC(2026, 0, 1, 10, 5, 0));

function pod(annotations: Record<string, string> = {}): V1Pod {
  return {
    metadata: { name: 'web-1', namespace: 'default', uid: 'uid-1', annotations },
    spec: {
      nodeName: 'node-0',
      containers: [
        { name: 'web', image: 'demo:v1' },
        { name: 'sidecar', image: 'side:v1' },
      ],
    },
    status: { phase: 'Pending' },
  };
}

const facts = {
  podIp: '198.18.0.2',
  hostIp: '198.18.255.1',
  startedAt: started,
  probesReady: true,
  now: started,
};

describe('buildRunningPodStatus', () => {
  test('a ready pod is Running with IPs, four True conditions and running containers', () => {
    const status = buildRunningPodStatus(pod(), facts);
    assert.equal(status.phase, 'Running');
    assert.equal(status.podIP, '198.18.0.2');
    assert.deepEqual(status.podIPs, [{ ip: '198.18.0.2' }]);
    assert.equal(status.hostIP, '198.18.255.1');
    assert.deepEqual(
      status.conditions?.map((c) => [c.type, c.status]),
      [
        ['PodScheduled', 'True'],
        ['Initialized', 'True'],
        ['ContainersReady', 'True'],
        ['Ready', 'True'],
      ],
    );
    assert.deepEqual(
      status.containerStatuses?.map((c) => [
        c.name,
        c.image,
        c.ready,
        c.started,
        c.restartCount,
        c.state?.running?.startedAt,
      ]),
      [
        ['web', 'demo:v1', true, true, 0, started],
        ['sidecar', 'side:v1', true, true, 0, started],
      ],
    );
  });

  test('failing probes make ContainersReady and Ready False with upstream reason', () => {
    const status = buildRunningPodStatus(pod(), { ...facts, probesReady: false });
    const ready = status.conditions?.find((c) => c.type === 'Ready');
    assert.deepEqual([ready?.status, ready?.reason], ['False', 'ContainersNotReady']);
    assert.equal(
      status.containerStatuses?.every((c) => c.ready === false),
      true,
    );
  });

  test(`annotation ${readinessOverrideAnnotation}=false forces unready even when probes pass`, () => {
    const status = buildRunningPodStatus(pod({ [readinessOverrideAnnotation]: 'false' }), facts);
    assert.equal(status.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
    const other = buildRunningPodStatus(pod({ [readinessOverrideAnnotation]: 'true' }), facts);
    assert.equal(other.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  });

  test('lastTransitionTime moves only when a condition flips, so an unchanged pod rebuilds equal', () => {
    const first = { ...pod(), status: buildRunningPodStatus(pod(), facts) };
    const same = buildRunningPodStatus(first, { ...facts, now: later });
    assert.deepEqual(same, first.status);
    const flipped = buildRunningPodStatus(first, { ...facts, probesReady: false, now: later });
    const ready = flipped.conditions?.find((c) => c.type === 'Ready');
    const scheduled = flipped.conditions?.find((c) => c.type === 'PodScheduled');
    assert.deepEqual(ready?.lastTransitionTime, later);
    assert.deepEqual(scheduled?.lastTransitionTime, started);
  });
});
