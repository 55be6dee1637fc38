import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { V1EndpointSlice, V1Node, V1Pod } from '@kubernetes/client-node';
import { MANAGED_BY_ENDPOINTSLICE_CONTROLLER } from '../../api/labels.ts';
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

function endpointCount(slices: V1EndpointSlice[]): number[] {
  return slices.map((slice) => slice.endpoints?.length ?? 0).sort((a, b) => b - a);
}

function versions(slices: V1EndpointSlice[]): string[] {
  return slices.map((slice) => `${slice.metadata?.name}@${slice.metadata?.resourceVersion}`).sort();
}

describe('EndpointSlice controller against the local API server', () => {
  let cluster: EndpointTestCluster;
  const slices = (service: string) =>
    slicesOf(cluster.discovery, service, MANAGED_BY_ENDPOINTSLICE_CONTROLLER);

  before(async () => {
    cluster = await startEndpointTestCluster();
    await createNode(cluster.core, 'node-a', 'zone-a');
    await createNode(cluster.core, 'node-b', 'zone-b');
  });
  after(async () => {
    await cluster?.close();
  });

  test("the seeds' Deployment pods plus an extra pod give one slice with 4 ready endpoints", async () => {
    const pods: V1Pod[] = [];
    for (let i = 0; i < 4; i++) {
      pods.push(
        await createRunningPod(cluster.core, {
          name: i < 3 ? `hostnames-7d9f8c6b5-${i}` : 'hostnames-extra',
          labels: { app: 'hostnames' },
          ip: podIP(10 + i),
          nodeName: i % 2 === 0 ? 'node-a' : 'node-b',
          ready: true,
        }),
      );
    }
    const service = await cluster.core.createNamespacedService({
      namespace: 'default',
      body: clusterIPService('hostnames', { app: 'hostnames' }, '10.96.0.11'),
    });
    const [slice] = await eventually(
      () => slices('hostnames'),
      (found) => found.length === 1 && found[0]!.endpoints?.length === 4,
      'one slice with 4 endpoints',
    );
    assert.equal(slice!.addressType, 'IPv4');
    assert.deepEqual(
      slice!.ports?.map((port) => ({ ...port })),
      [{ name: 'http', port: 9376, protocol: 'TCP' }],
    );
    assert.equal(slice!.metadata?.generateName, 'hostnames-');
    assert.deepEqual(slice!.metadata?.ownerReferences?.[0]?.uid, service.metadata?.uid);
    const byPod = new Map(slice!.endpoints!.map((endpoint) => [endpoint.targetRef?.name, endpoint]));
    assert.deepEqual(byPod.get('hostnames-extra')?.addresses, [podIP(13)]);
    assert.equal(byPod.get('hostnames-extra')?.zone, 'zone-b');
    assert.equal(byPod.get('hostnames-7d9f8c6b5-0')?.zone, 'zone-a');
    assert.ok(slice!.endpoints!.every((endpoint) => endpoint.conditions?.ready === true));

    await setPodReady(cluster.core, pods[1]!, false);
    const [afterFlip] = await eventually(
      () => slices('hostnames'),
      (found) =>
        found[0]?.endpoints?.find((endpoint) => endpoint.targetRef?.name === 'hostnames-7d9f8c6b5-1')
          ?.conditions?.ready === false,
      'the unready pod to show ready=false',
    );
    const flipped = afterFlip!.endpoints!.find(
      (endpoint) => endpoint.targetRef?.name === 'hostnames-7d9f8c6b5-1',
    );
    assert.deepEqual({ ...flipped?.conditions }, { ready: false, serving: false, terminating: false });
    assert.equal(afterFlip!.metadata?.name, slice!.metadata?.name, 'the slice is updated in place');
  });

  test('a second reconcile of a converged Service writes nothing', async () => {
    await cluster.idle();
    const before = versions(await slices('hostnames'));
    const writes = await writesSent();
    await cluster.endpointControllers.reconcilers.endpointSlices.reconcile('default/hostnames');
    await cluster.endpointControllers.reconcilers.endpointSlices.reconcile('default/hostnames');
    assert.equal(await writesSent(), writes, 'no write was sent');
    assert.deepEqual(versions(await slices('hostnames')), before);
  });

  test('a node zone change moves the zone of the endpoints on that node', async () => {
    const node = await cluster.core.readNode({ name: 'node-b' });
    node.metadata!.labels!['topology.kubernetes.io/zone'] = 'zone-c';
    await cluster.core.replaceNode({ name: 'node-b', body: node });
    await eventually(
      () => slices('hostnames'),
      (found) =>
        found[0]?.endpoints?.find((endpoint) => endpoint.targetRef?.name === 'hostnames-extra')?.zone ===
        'zone-c',
      'zone-c on the pod of node-b',
    );
  });

  test('a pod on an unknown node is published once its Node appears', async () => {
    await createRunningPod(cluster.core, {
      name: 'hostnames-late',
      labels: { app: 'hostnames' },
      ip: podIP(20),
      nodeName: 'node-late',
      ready: true,
    });
    await cluster.idle();
    const before = await slices('hostnames');
    assert.equal(before[0]?.endpoints?.length, 4, 'left out while its node is unknown');
    await createNode(cluster.core, 'node-late', 'zone-a');
    await eventually(
      () => slices('hostnames'),
      (found) =>
        found[0]?.endpoints?.some((endpoint) => endpoint.targetRef?.name === 'hostnames-late') === true,
      'the late pod to be published',
    );
  });

  test('a pod relabelled away leaves the old Service and joins the new one', async () => {
    await cluster.core.createNamespacedService({
      namespace: 'default',
      body: clusterIPService('canary', { app: 'canary' }, '10.96.0.12'),
    });
    await eventually(
      () => slices('canary'),
      (found) => found.length === 1 && (found[0]!.endpoints ?? []).length === 0,
      'a placeholder slice for the empty Service',
    );
    const pod = await cluster.core.readNamespacedPod({ name: 'hostnames-late', namespace: 'default' });
    pod.metadata!.labels = { app: 'canary' };
    await cluster.core.replaceNamespacedPod({ name: 'hostnames-late', namespace: 'default', body: pod });
    await eventually(
      async () => [await slices('hostnames'), await slices('canary')] as const,
      ([web, canary]) =>
        web[0]?.endpoints?.length === 4 &&
        canary.length === 1 &&
        canary[0]?.endpoints?.[0]?.targetRef?.name === 'hostnames-late',
      'the pod to move from hostnames to canary',
    );
  });

  test('a failed slice write leaves a Warning Event on the Service and is retried', async () => {
    await cluster.idle();
    const nodes = cluster.server.registry.catalog.find('', 'v1', 'nodes')!;
    const node = structuredClone(cluster.server.registry.get(nodes, '', 'node-a')) as V1Node;
    node.metadata!.labels!['topology.kubernetes.io/zone'] = 'zone-d';
    // A zone change is written by the slice controller alone, so the one injected failure is its
    // write; the Node itself is updated inside the server, which does not use up the failure.
    cluster.server.faults.failNext(1, { code: 500 });
    await cluster.server.registry.update(nodes, '', 'node-a', node, {
      dryRun: false,
      user: { username: 'test', groups: ['system:masters'] },
    });
    const events = await eventually(
      () =>
        cluster.core.listNamespacedEvent({
          namespace: 'default',
          fieldSelector: 'involvedObject.name=hostnames',
        }),
      (list) => list.items.some((event) => event.reason === 'FailedToUpdateEndpointSlices'),
      'a FailedToUpdateEndpointSlices Event',
    );
    const warning = events.items.find((event) => event.reason === 'FailedToUpdateEndpointSlices')!;
    assert.equal(warning.type, 'Warning');
    assert.equal(warning.involvedObject.kind, 'Service');
    assert.match(
      warning.message ?? '',
      /Error updating Endpoint Slices for Service default\/hostnames: update EndpointSlice/,
    );
    await eventually(
      () => slices('hostnames'),
      (found) =>
        found[0]?.endpoints?.find((endpoint) => endpoint.targetRef?.name === 'hostnames-7d9f8c6b5-0')
          ?.zone === 'zone-d',
      'the retried write to land',
    );
  });

  test('a slice deleted by someone else is recreated', async () => {
    const [victim] = await slices('hostnames');
    await cluster.discovery.deleteNamespacedEndpointSlice({
      name: victim!.metadata!.name!,
      namespace: 'default',
    });
    const recreated = await eventually(
      () => slices('hostnames'),
      (found) => found.length === 1 && found[0]!.metadata?.name !== victim!.metadata!.name,
      'a replacement slice',
    );
    assert.equal(recreated[0]!.endpoints?.length, 4);
  });

  test('250 pods give 100+100+50; removing one pod rewrites one slice only', async () => {
    await cluster.core.createNamespacedService({
      namespace: 'default',
      body: clusterIPService('scale', { app: 'scale' }, '10.96.0.13'),
    });
    const indexes = Array.from({ length: 250 }, (_, i) => i);
    await inBatches(indexes, 16, (i) =>
      createRunningPod(cluster.core, {
        name: `scale-${i}`,
        labels: { app: 'scale' },
        ip: podIP(1000 + i),
        nodeName: i % 2 === 0 ? 'node-a' : 'node-b',
        ready: true,
      }),
    );
    const full = await eventually(
      () => slices('scale'),
      (found) => endpointCount(found).join() === '100,100,50',
      '3 slices of 100, 100 and 50',
    );
    const addresses = new Set(
      full.flatMap((slice) => slice.endpoints!.map((endpoint) => endpoint.addresses[0])),
    );
    assert.equal(addresses.size, 250);
    await cluster.idle();
    const before = new Map(
      (await slices('scale')).map((slice) => [slice.metadata!.name!, slice.metadata!.resourceVersion]),
    );
    await cluster.core.deleteNamespacedPod({ name: 'scale-7', namespace: 'default', gracePeriodSeconds: 0 });
    const after = await eventually(
      () => slices('scale'),
      (found) => endpointCount(found).reduce((sum, n) => sum + n, 0) === 249,
      '249 endpoints',
    );
    const rewritten = after.filter(
      (slice) => before.get(slice.metadata!.name!) !== slice.metadata!.resourceVersion,
    );
    assert.equal(rewritten.length, 1, 'only the slice that held the pod is written');
  });

  test('deleting the Service removes its slices (owner reference garbage collection)', async () => {
    await cluster.core.deleteNamespacedService({ name: 'scale', namespace: 'default' });
    await eventually(
      () => slices('scale'),
      (found) => found.length === 0,
      'no slices for the deleted Service',
    );
  });
});

describe('EndpointSlice controller: topology-mode Auto against the local API server', () => {
  let cluster: EndpointTestCluster;

  before(async () => {
    cluster = await startEndpointTestCluster();
  });
  after(async () => {
    await cluster?.close();
  });

  /** Creates a Node and reports its allocatable CPU and readiness through /status, as a kubelet does. */
  const reportNode = async (name: string, zone: string, cpu: string, ready: boolean): Promise<void> => {
    let node: V1Node;
    try {
      node = await cluster.core.readNode({ name });
    } catch {
      node = await createNode(cluster.core, name, zone);
    }
    node.status = {
      allocatable: { cpu, memory: '8Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }],
    };
    await cluster.core.replaceNodeStatus({ name, body: node });
  };
  const reasons = async (): Promise<string[]> => {
    const list = await cluster.core.listNamespacedEvent({
      namespace: 'default',
      fieldSelector: 'involvedObject.name=zonal',
    });
    return list.items.map((event) => `${event.type} ${event.reason}: ${event.message}`);
  };
  const hintCounts = (found: V1EndpointSlice[]): Record<string, number> => {
    const counts: Record<string, number> = {};
    for (const endpoint of found.flatMap((slice) => slice.endpoints ?? [])) {
      for (const zone of endpoint.hints?.forZones ?? []) counts[zone.name] = (counts[zone.name] ?? 0) + 1;
    }
    return counts;
  };

  test('hints follow the zones CPU; a node turning NotReady removes them with an Event', async () => {
    await reportNode('big', 'zone-a', '6', true);
    await reportNode('small', 'zone-b', '2000m', true);
    await inBatches([0, 1, 2, 3], 4, (i) =>
      createRunningPod(cluster.core, {
        name: `zonal-${i}`,
        labels: { app: 'zonal' },
        ip: podIP(100 + i),
        nodeName: i < 2 ? 'big' : 'small',
        ready: true,
      }),
    );
    const service = clusterIPService('zonal', { app: 'zonal' }, '10.96.0.31');
    service.metadata!.annotations = { 'service.kubernetes.io/topology-mode': 'Auto' };
    await cluster.core.createNamespacedService({ namespace: 'default', body: service });
    await eventually(
      () => slicesOf(cluster.discovery, 'zonal', MANAGED_BY_ENDPOINTSLICE_CONTROLLER),
      (found) => JSON.stringify(hintCounts(found)) === JSON.stringify({ 'zone-a': 3, 'zone-b': 1 }),
      'three zone-a hints and one zone-b hint (CPU 6:2)',
    );
    await eventually(
      reasons,
      (found) =>
        found.includes(
          'Normal TopologyAwareHintsEnabled: Topology Aware Hints has been enabled, addressType: IPv4',
        ),
      'a TopologyAwareHintsEnabled Event',
    );

    await reportNode('small', 'zone-b', '2000m', false);
    await eventually(
      () => slicesOf(cluster.discovery, 'zonal', MANAGED_BY_ENDPOINTSLICE_CONTROLLER),
      (found) => found.length === 1 && Object.keys(hintCounts(found)).length === 0,
      'hints removed',
    );
    await eventually(
      reasons,
      (found) =>
        found.includes('Warning TopologyAwareHintsDisabled: Nodes only ready in one zone, addressType: IPv4'),
      'a TopologyAwareHintsDisabled Event',
    );
  });
});
