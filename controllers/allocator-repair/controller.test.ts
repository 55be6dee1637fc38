import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, type CoreV1Event, type V1Service } from '@kubernetes/client-node';
import type { ApiServer } from '../../e2e/apiserver/index.ts';
import type { ServiceAllocators } from '../../webhooks/services/allocators.ts';
import {
  createServiceHolding,
  indexedServicesInformer,
  testServiceAllocators,
} from '../../webhooks/testing/services.ts';
import { EventRecorder } from '../runtime/events.ts';
import type { Informer } from '../runtime/informer.ts';
import { type KubeJsonClient, kubeJsonClient } from '../runtime/kube.ts';
import { renderMetrics } from '../runtime/metrics.ts';
import { kubeConfigFor, startTestApiServer, testLogger, waitFor } from '../runtime/testing/harness.ts';
import { AllocatorRepairController } from './controller.ts';

const namespace = 'portico-system';
let apiServer: ApiServer;
let core: CoreV1Api;
let allocators: ServiceAllocators;
let services: Informer<V1Service>;
let api: KubeJsonClient;
let events: EventRecorder;

async function allocatedIPs(): Promise<string[]> {
  const handle = allocators.clusterIP('IPv4')!;
  const allocator = handle.newAllocator();
  allocator.restore(await handle.store.read());
  return [...allocator.allocated()];
}

async function allocatedPorts(): Promise<number[]> {
  const allocator = allocators.nodePorts.newAllocator();
  allocator.restore(await allocators.nodePorts.store.read());
  return [...allocator.allocated()];
}

async function warningsOn(name: string): Promise<CoreV1Event[]> {
  const list = await core.listNamespacedEvent({ namespace: 'default' });
  return list.items.filter((event) => event.involvedObject.name === name && event.type === 'Warning');
}

before(async () => {
  apiServer = await startTestApiServer();
  const kubeConfig = kubeConfigFor(apiServer.kubeconfigPath);
  core = kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  api = kubeJsonClient(kubeConfig);
  allocators = testServiceAllocators(api, namespace);
  const logger = testLogger();
  services = indexedServicesInformer(kubeConfig, logger);
  services.start();
  await services.waitForSync();
  events = new EventRecorder({ kubeConfig, component: 'allocator-repair', logger });
});

after(async () => {
  await services?.stop();
  api?.close();
  await apiServer?.close();
});

describe('allocator repair loop', () => {
  test('duplicates and out-of-range addresses get Warning Events naming the other Service; nothing is taken', async () => {
    await createServiceHolding(core, 'dup-a', '198.19.3.3');
    await createServiceHolding(core, 'dup-b', '198.19.3.3');
    await createServiceHolding(core, 'outside', '10.0.0.1');
    await createServiceHolding(core, 'unmarked', '198.19.4.4', 30444);
    await waitFor(() => services.list().length === 4, 'the Services in the cache');
    const repair = new AllocatorRepairController({
      allocators,
      services,
      events,
      logger: testLogger(),
      intervalMs: 60_000,
    });
    await repair.repairOnce();
    assert.deepEqual(await allocatedIPs(), ['198.19.3.3', '198.19.4.4']);
    assert.deepEqual(await allocatedPorts(), [30444]);
    await waitFor(async () => (await warningsOn('dup-b')).length > 0, 'the duplicate Event');
    const [duplicate] = await warningsOn('dup-a');
    assert.equal(duplicate?.reason, 'ClusterIPAlreadyAllocated');
    assert.match(duplicate!.message!, /also default\/dup-b/);
    const [outside] = await warningsOn('outside');
    assert.equal(outside?.reason, 'ClusterIPOutOfRange');
    assert.match(outside!.message!, /is not within the configured Service CIDR 198\.19\.0\.0\/16/);
    const unmarked = (await warningsOn('unmarked')).map((event) => event.reason).sort();
    assert.deepEqual(unmarked, ['ClusterIPNotAllocated', 'PortNotAllocated']);
    const stored = await core.listNamespacedService({ namespace: 'default' });
    assert.equal(stored.items.length, 4, 'no Service was changed or removed');
    const metrics = (await renderMetrics()).body;
    assert.match(
      metrics,
      /portico_allocator_conflicts_found_total\{allocator="IPv4",reason="ClusterIPAlreadyAllocated"\} 2/,
    );
    assert.match(metrics, /portico_allocator_values\{allocator="IPv4",state="used"\} 2/);
  });

  test('a leaked address is kept through the grace period and freed by a later scheduled pass', async () => {
    await allocators.clusterIP('IPv4')!.store.allocate('198.19.5.5');
    await allocators.nodePorts.store.allocate(30555);
    const repair = new AllocatorRepairController({
      allocators,
      services,
      events,
      logger: testLogger(),
      intervalMs: 100,
      leakGracePeriodMs: 600,
    });
    const started = Date.now();
    repair.run();
    try {
      await waitFor(
        async () => (await allocatedIPs()).includes('198.19.5.5') === false,
        'the leak to be freed',
      );
      assert.ok(Date.now() - started >= 600, 'not before the grace period');
      await waitFor(async () => !(await allocatedPorts()).includes(30555), 'the leaked port to be freed');
      assert.deepEqual(await allocatedIPs(), ['198.19.3.3', '198.19.4.4'], 'addresses in use stay');
      assert.match(
        (await renderMetrics()).body,
        /portico_allocator_leaks_reclaimed_total\{allocator="IPv4"\} 1/,
      );
    } finally {
      assert.equal(await repair.stop(5000), true);
    }
  });
});
