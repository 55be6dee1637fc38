import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { planEndpointSlices } from './plan.ts';
import { FakeSliceStore, makeNodes, makePods, makeService } from './test-fixtures.ts';
import { EndpointSliceWriteTracker, serviceKeyOfSlice } from './write-tracker.ts';

function slice(
  uid: string,
  generation: number | undefined,
  resourceVersion: string,
  service = 'web',
): V1EndpointSlice {
  return {
    addressType: 'IPv4',
    metadata: {
      name: `${service}-${uid}`,
      namespace: 'default',
      uid,
      resourceVersion,
      ...(generation === undefined ? {} : { generation }),
      labels: { 'kubernetes.io/service-name': service },
    },
  };
}

describe('EndpointSliceWriteTracker', () => {
  test('a slice just created but not yet in the cache makes the cache stale', () => {
    const tracker = new EndpointSliceWriteTracker();
    tracker.recordWrite(slice('a', 1, '10'));
    assert.equal(tracker.isStale('default/web', []), true);
    assert.equal(tracker.isStale('default/web', [slice('a', 1, '10')]), false);
    assert.equal(tracker.isStale('default/other', []), false, 'other Services are unaffected');
  });

  test('an older generation in the cache is stale, the written or a newer one is not', () => {
    const tracker = new EndpointSliceWriteTracker();
    tracker.recordWrite(slice('a', 3, '30'));
    assert.equal(tracker.isStale('default/web', [slice('a', 2, '20')]), true);
    assert.equal(tracker.isStale('default/web', [slice('a', 3, '30')]), false);
    assert.equal(tracker.isStale('default/web', [slice('a', 4, '40')]), false);
  });

  test('without generations, numeric resourceVersions order the writes', () => {
    const tracker = new EndpointSliceWriteTracker();
    tracker.recordWrite(slice('a', undefined, '120'));
    assert.equal(tracker.isStale('default/web', [slice('a', undefined, '99')]), true);
    assert.equal(tracker.isStale('default/web', [slice('a', undefined, '120')]), false);
    assert.equal(tracker.shouldSync(slice('a', undefined, '120')), false);
    assert.equal(tracker.shouldSync(slice('a', undefined, '121')), true);
  });

  test('own writes are not synced again, foreign changes are', () => {
    const tracker = new EndpointSliceWriteTracker();
    assert.equal(tracker.shouldSync(slice('a', 1, '10')), true, 'unknown slice');
    tracker.recordWrite(slice('a', 2, '20'));
    assert.equal(tracker.shouldSync(slice('a', 2, '20')), false, 'echo of the write');
    assert.equal(tracker.shouldSync(slice('a', 1, '10')), false, 'older than the write');
    assert.equal(tracker.shouldSync(slice('a', 3, '30')), true, 'someone changed it since');
  });

  test('a slice whose deletion was requested is stale while still cached; its delete event is expected', () => {
    const tracker = new EndpointSliceWriteTracker();
    tracker.recordWrite(slice('a', 1, '10'));
    tracker.expectDeletion(slice('a', 1, '10'));
    assert.equal(tracker.isStale('default/web', [slice('a', 1, '10')]), true);
    assert.equal(tracker.isStale('default/web', []), false);
    assert.equal(tracker.handleDeletion(slice('a', 1, '10')), false);
    assert.equal(tracker.size, 0);
  });

  test('an unexpected deletion asks for a sync', () => {
    const tracker = new EndpointSliceWriteTracker();
    tracker.recordWrite(slice('a', 1, '10'));
    assert.equal(tracker.handleDeletion(slice('a', 1, '10')), true);
    assert.equal(tracker.isStale('default/web', []), false, 'forgotten once deleted');
  });

  test('forgetService drops what a deleted Service had', () => {
    const tracker = new EndpointSliceWriteTracker();
    tracker.recordWrite(slice('a', 1, '10'));
    tracker.recordWrite(slice('b', 1, '11', 'api'));
    tracker.forgetService('default/web');
    assert.equal(tracker.size, 1);
    assert.equal(tracker.isStale('default/web', []), false);
    assert.equal(serviceKeyOfSlice(slice('b', 1, '11', 'api')), 'default/api');
  });

  test('a reconciler that checks the tracker does not create duplicates from a lagging cache', () => {
    const tracker = new EndpointSliceWriteTracker();
    const store = new FakeSliceStore();
    const nodes = makeNodes({ 'node-a': 'zone-a' });
    const service = makeService();
    const laggingCache: V1EndpointSlice[] = [];
    const reconcile = (): void => {
      if (tracker.isStale('default/web', laggingCache)) return;
      const plan = planEndpointSlices(service, makePods(150), nodes, laggingCache);
      store.apply(plan);
      for (const written of store.list()) tracker.recordWrite(written);
    };
    reconcile();
    reconcile();
    assert.equal(store.list().length, 2, 'second reconcile waited for the cache');
    laggingCache.push(...store.list());
    reconcile();
    assert.equal(store.list().length, 2);
  });
});
