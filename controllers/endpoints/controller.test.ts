import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { V1EndpointSlice, V1Endpoints, V1Pod } from '@kubernetes/client-node';
import {
  ANNOTATION_ENDPOINTS_OVER_CAPACITY,
  ANNOTATION_LAST_CHANGE_TRIGGER_TIME,
  MANAGED_BY_ENDPOINTSLICE_CONTROLLER,
} from '../../api/labels.ts';
import {
  clusterIPService,
  createNode,
  createRunningPod,
  type EndpointTestCluster,
  eventually,
  inBatches,
  podIP,
  setPodReady,
  slicesOf,
  startEndpointTestCluster,
  writesSent,
} from '../endpoint-test-cluster.ts';

function addressCount(endpoints: V1Endpoints | undefined, field: 'addresses' | 'notReadyAddresses'): number {
  return (endpoints?.subsets ?? []).reduce((sum, subset) => sum + (subset[field]?.length ?? 0), 0);
}

function sliceEndpointCount(slices: V1EndpointSlice[]): number {
  return slices.reduce((sum, slice) => sum + (slice.endpoints?.length ?? 0), 0);
}

describe('Endpoints controller against the local API server', () => {
  let cluster: EndpointTestCluster;
  const read = async (name: string): Promise<V1Endpoints | undefined> => {
    try {
      return await cluster.core.readNamespacedEndpoints({ name, namespace: 'default' });
    } catch {
      return undefined;
    }
  };

  before(async () => {
    cluster = await startEndpointTestCluster();
    await createNode(cluster.core, 'node-a', 'zone-a');
  });
  after(async () => {
    await cluster?.close();
  });

  test("the seeds' 3 Deployment pods plus an extra pod give Endpoints with 4 addresses", async () => {
    const pods: V1Pod[] = [];
    for (let i = 0; i < 4; i++) {
      pods.push(
        await createRunningPod(cluster.core, {
          name: i < 3 ? `hostnames-5f7c9d-${i}` : 'hostnames-extra',
          labels: { app: 'hostnames' },
          ip: podIP(10 + i),
          nodeName: 'node-a',
          ready: true,
        }),
      );
    }
    await cluster.core.createNamespacedService({
      namespace: 'default',
      body: clusterIPService('hostnames', { app: 'hostnames' }, '10.96.0.21'),
    });
    const endpoints = await eventually(
      () => read('hostnames'),
      (found) => addressCount(found, 'addresses') === 4,
      'Endpoints with 4 addresses',
    );
    assert.equal(endpoints!.subsets?.length, 1);
    assert.deepEqual(
      endpoints!.subsets![0]!.ports?.map((port) => ({ ...port })),
      [{ name: 'http', port: 9376, protocol: 'TCP' }],
    );
    assert.deepEqual(
      endpoints!.subsets![0]!.addresses!.map((address) => address.ip),
      [podIP(10), podIP(11), podIP(12), podIP(13)],
    );
    assert.equal(endpoints!.subsets![0]!.addresses![0]!.targetRef?.kind, 'Pod');
    assert.equal(endpoints!.subsets![0]!.addresses![0]!.nodeName, 'node-a');
    assert.ok(endpoints!.metadata?.annotations?.[ANNOTATION_LAST_CHANGE_TRIGGER_TIME]);

    await setPodReady(cluster.core, pods[2]!, false);
    const flipped = await eventually(
      () => read('hostnames'),
      (found) => addressCount(found, 'notReadyAddresses') === 1,
      'one not-ready address',
    );
    assert.equal(addressCount(flipped, 'addresses'), 3);
    assert.equal(flipped!.subsets![0]!.notReadyAddresses![0]!.targetRef?.name, 'hostnames-5f7c9d-2');
  });

  test('a second reconcile writes nothing', async () => {
    await cluster.idle();
    const before = (await read('hostnames'))?.metadata?.resourceVersion;
    const writes = await writesSent();
    await cluster.endpointControllers.reconcilers.endpoints.reconcile('default/hostnames');
    await cluster.endpointControllers.reconcilers.endpoints.reconcile('default/hostnames');
    assert.equal(await writesSent(), writes, 'no write was sent');
    assert.equal((await read('hostnames'))?.metadata?.resourceVersion, before);
  });

  test('a selector-less Service keeps the Endpoints its user wrote', async () => {
    await cluster.core.createNamespacedService({
      namespace: 'default',
      body: clusterIPService('external-db', undefined, '10.96.0.22'),
    });
    await cluster.core.createNamespacedEndpoints({
      namespace: 'default',
      body: {
        metadata: { name: 'external-db', namespace: 'default' },
        subsets: [{ addresses: [{ ip: '192.0.2.42' }], ports: [{ port: 9376, protocol: 'TCP' }] }],
      },
    });
    await cluster.idle();
    await cluster.endpointControllers.reconcilers.endpoints.reconcile('default/external-db');
    const kept = await read('external-db');
    assert.equal(kept?.subsets?.[0]?.addresses?.[0]?.ip, '192.0.2.42');
  });

  test('1,200 pods truncate Endpoints at 1000 with the annotation while slices hold all 1,200', async () => {
    // Pods first, Service last: the controllers then sync the Service once instead of per pod.
    const indexes = Array.from({ length: 1200 }, (_, i) => i);
    await inBatches(indexes, 24, (i) =>
      createRunningPod(cluster.core, {
        name: `big-${i}`,
        labels: { app: 'big' },
        ip: podIP(2000 + i),
        nodeName: 'node-a',
        ready: true,
      }),
    );
    await cluster.core.createNamespacedService({
      namespace: 'default',
      body: clusterIPService('big', { app: 'big' }, '10.96.0.23'),
    });
    const endpoints = await eventually(
      () => read('big'),
      (found) => found?.metadata?.annotations?.[ANNOTATION_ENDPOINTS_OVER_CAPACITY] === 'truncated',
      'the over-capacity annotation',
      30_000,
    );
    assert.equal(addressCount(endpoints, 'addresses') + addressCount(endpoints, 'notReadyAddresses'), 1000);
    const slices = await eventually(
      () => slicesOf(cluster.discovery, 'big', MANAGED_BY_ENDPOINTSLICE_CONTROLLER),
      (found) => sliceEndpointCount(found) === 1200,
      '1,200 endpoints in slices',
      30_000,
    );
    assert.equal(slices.length, 12);
  });

  test('deleting the Service deletes its Endpoints', async () => {
    await cluster.core.deleteNamespacedService({ name: 'hostnames', namespace: 'default' });
    await eventually(
      () => read('hostnames'),
      (found) => found === undefined,
      'the Endpoints to be deleted',
    );
  });
});
