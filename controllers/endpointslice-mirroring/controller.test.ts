import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { MANAGED_BY_ENDPOINTSLICE_MIRRORING_CONTROLLER } from '../../api/labels.ts';
import {
  clusterIPService,
  type EndpointTestCluster,
  eventually,
  slicesOf,
  startEndpointTestCluster,
  writesSent,
} from '../endpoint-test-cluster.ts';

function mirroredAddresses(slices: V1EndpointSlice[]): string[] {
  return slices.flatMap((slice) => (slice.endpoints ?? []).flatMap((endpoint) => endpoint.addresses)).sort();
}

describe('EndpointSlice mirroring controller against the local API server', () => {
  let cluster: EndpointTestCluster;
  const mirrored = () =>
    slicesOf(cluster.discovery, 'my-service', MANAGED_BY_ENDPOINTSLICE_MIRRORING_CONTROLLER);

  before(async () => {
    cluster = await startEndpointTestCluster();
  });
  after(async () => {
    await cluster?.close();
  });

  test("seed 003's selector-less Service with a manual Endpoints gets a mirrored slice", async () => {
    await cluster.core.createNamespacedService({
      namespace: 'default',
      body: clusterIPService('my-service', undefined, '10.96.0.31'),
    });
    const endpoints = await cluster.core.createNamespacedEndpoints({
      namespace: 'default',
      body: {
        metadata: {
          name: 'my-service',
          namespace: 'default',
          labels: { team: 'db' },
          annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', note: 'kept' },
        },
        subsets: [{ addresses: [{ ip: '192.0.2.42' }], ports: [{ port: 9376, protocol: 'TCP' }] }],
      },
    });
    const [slice] = await eventually(mirrored, (found) => found.length === 1, 'one mirrored slice');
    assert.equal(slice!.addressType, 'IPv4');
    assert.deepEqual(slice!.endpoints?.[0]?.addresses, ['192.0.2.42']);
    assert.equal(slice!.endpoints?.[0]?.conditions?.ready, true);
    assert.deepEqual(
      slice!.ports?.map((port) => ({ ...port })),
      [{ name: '', port: 9376, protocol: 'TCP' }],
    );
    assert.equal(slice!.metadata?.labels?.['team'], 'db');
    assert.equal(slice!.metadata?.annotations?.['note'], 'kept');
    assert.equal(
      slice!.metadata?.annotations?.['kubectl.kubernetes.io/last-applied-configuration'],
      undefined,
    );
    assert.equal(slice!.metadata?.ownerReferences?.[0]?.kind, 'Endpoints');
    assert.equal(slice!.metadata?.ownerReferences?.[0]?.uid, endpoints.metadata?.uid);
  });

  test('a second reconcile writes nothing', async () => {
    await cluster.idle();
    const before = (await mirrored()).map((slice) => slice.metadata?.resourceVersion);
    const writes = await writesSent();
    await cluster.endpointControllers.reconcilers.mirroring.reconcile('default/my-service');
    assert.equal(await writesSent(), writes, 'no write was sent');
    assert.deepEqual(
      (await mirrored()).map((slice) => slice.metadata?.resourceVersion),
      before,
    );
  });

  test('an edit of the Endpoints is mirrored into the same slice', async () => {
    const [before] = await mirrored();
    const endpoints = await cluster.core.readNamespacedEndpoints({
      name: 'my-service',
      namespace: 'default',
    });
    endpoints.subsets![0]!.addresses!.push({ ip: '192.0.2.43' });
    await cluster.core.replaceNamespacedEndpoints({
      name: 'my-service',
      namespace: 'default',
      body: endpoints,
    });
    const after = await eventually(
      mirrored,
      (found) => mirroredAddresses(found).join() === '192.0.2.42,192.0.2.43',
      'both addresses mirrored',
    );
    assert.equal(after[0]!.metadata?.name, before!.metadata?.name);
  });

  test('the skip-mirror label removes the mirrored slices', async () => {
    const endpoints = await cluster.core.readNamespacedEndpoints({
      name: 'my-service',
      namespace: 'default',
    });
    endpoints.metadata!.labels = {
      ...endpoints.metadata!.labels,
      'endpointslice.kubernetes.io/skip-mirror': 'true',
    };
    await cluster.core.replaceNamespacedEndpoints({
      name: 'my-service',
      namespace: 'default',
      body: endpoints,
    });
    await eventually(mirrored, (found) => found.length === 0, 'no mirrored slices');
  });

  test('Endpoints of a Service with a selector are not mirrored', async () => {
    await cluster.core.createNamespacedService({
      namespace: 'default',
      body: clusterIPService('selected', { app: 'selected' }, '10.96.0.32'),
    });
    await cluster.idle();
    await cluster.endpointControllers.reconcilers.mirroring.reconcile('default/selected');
    const slices = await slicesOf(
      cluster.discovery,
      'selected',
      MANAGED_BY_ENDPOINTSLICE_MIRRORING_CONTROLLER,
    );
    assert.equal(slices.length, 0);
  });
});
