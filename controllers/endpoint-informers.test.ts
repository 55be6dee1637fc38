import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import {
  POD_LABEL_INDEX,
  podLabelIndexValues,
  podsSelectedByService,
  SERVICE_SELECTOR_INDEX,
  serviceKeysForPodUpdate,
  serviceKeysSelectingPod,
  serviceSelectorIndexValues,
} from './endpoint-informers.ts';
import { makePod, makeService } from './endpointslice/test-fixtures.ts';
import { IndexedStore } from './runtime/informer.ts';

function serviceStore(services: V1Service[]): IndexedStore<V1Service> {
  const store = new IndexedStore<V1Service>({ [SERVICE_SELECTOR_INDEX]: serviceSelectorIndexValues });
  for (const service of services) store.upsert(service);
  return store;
}

function withLabels(pod: V1Pod, labels: Record<string, string>, resourceVersion: string): V1Pod {
  return { ...pod, metadata: { ...pod.metadata, labels, resourceVersion } };
}

describe('Service selector index', () => {
  const services = serviceStore([
    makeService({ name: 'web', selector: { app: 'web' } }),
    makeService({ name: 'web-canary', selector: { app: 'web', track: 'canary' } }),
    makeService({ name: 'db', selector: { app: 'db' } }),
    makeService({ name: 'other-ns', namespace: 'prod', selector: { app: 'web' } }),
    makeService({ name: 'manual', selector: undefined }),
  ]);

  test('a pod finds exactly the Services whose whole selector it matches, in its namespace', () => {
    const stable = makePod({ name: 'a', labels: { app: 'web', track: 'stable' } });
    const canary = makePod({ name: 'b', labels: { app: 'web', track: 'canary' } });
    assert.deepEqual([...serviceKeysSelectingPod(services, stable)], ['default/web']);
    assert.deepEqual([...serviceKeysSelectingPod(services, canary)].sort(), [
      'default/web',
      'default/web-canary',
    ]);
    assert.deepEqual([...serviceKeysSelectingPod(services, makePod({ name: 'c', labels: {} }))], []);
  });

  test('selector-less Services are not indexed', () => {
    assert.deepEqual(serviceSelectorIndexValues(makeService({ selector: undefined })), []);
  });

  test('a label change enqueues the Services the pod left and joined, not those it stayed in', () => {
    const before = withLabels(makePod({ name: 'a' }), { app: 'web', track: 'canary' }, '1');
    const after = withLabels(before, { app: 'db' }, '2');
    assert.deepEqual([...serviceKeysForPodUpdate(services, before, after)].sort(), [
      'default/db',
      'default/web',
      'default/web-canary',
    ]);
    const dropTrack = withLabels(before, { app: 'web' }, '3');
    assert.deepEqual([...serviceKeysForPodUpdate(services, before, dropTrack)], ['default/web-canary']);
  });

  test('a readiness change enqueues every Service of the pod; a resync or an irrelevant change none', () => {
    const ready = withLabels(makePod({ name: 'a', ready: true }), { app: 'web', track: 'canary' }, '1');
    const unready = {
      ...withLabels(makePod({ name: 'a', ready: false }), { app: 'web', track: 'canary' }, '2'),
    };
    assert.deepEqual([...serviceKeysForPodUpdate(services, ready, unready)].sort(), [
      'default/web',
      'default/web-canary',
    ]);
    assert.equal(serviceKeysForPodUpdate(services, ready, ready).size, 0);
    const annotated = {
      ...ready,
      metadata: { ...ready.metadata, resourceVersion: '3', annotations: { a: 'b' } },
    };
    assert.equal(serviceKeysForPodUpdate(services, ready, annotated).size, 0);
  });

  test('a Service finds its pods through its smallest selector bucket', () => {
    const pods = new IndexedStore<V1Pod>({ [POD_LABEL_INDEX]: podLabelIndexValues });
    for (let i = 0; i < 5; i++)
      pods.upsert(makePod({ name: `web-${i}`, labels: { app: 'web', track: 'stable' } }));
    pods.upsert(makePod({ name: 'canary', labels: { app: 'web', track: 'canary' } }));
    const canary = makeService({ name: 'web-canary', selector: { app: 'web', track: 'canary' } });
    assert.deepEqual(
      podsSelectedByService(pods, canary).map((pod) => pod.metadata?.name),
      ['canary'],
    );
    assert.equal(podsSelectedByService(pods, makeService({ selector: { app: 'web' } })).length, 6);
    assert.deepEqual(podsSelectedByService(pods, makeService({ selector: undefined })), []);
  });
});
