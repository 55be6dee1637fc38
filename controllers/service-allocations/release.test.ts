import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, setHeaderOptions, type V1Service } from '@kubernetes/client-node';
import type { ApiServer } from '../../e2e/apiserver/index.ts';
import type { ServiceAllocators } from '../../webhooks/services/allocators.ts';
import {
  createServiceHolding,
  indexedServicesInformer,
  testServiceAllocators,
} from '../../webhooks/testing/services.ts';
import { Controller } from '../runtime/controller.ts';
import type { Informer } from '../runtime/informer.ts';
import { type KubeJsonClient, kubeJsonClient } from '../runtime/kube.ts';
import { kubeConfigFor, startTestApiServer, testLogger, waitFor } from '../runtime/testing/harness.ts';
import { ServiceAllocationReleaser } from './release.ts';

const namespace = 'portico-system';
let apiServer: ApiServer;
let core: CoreV1Api;
let allocators: ServiceAllocators;
let services: Informer<V1Service>;
let controller: Controller;
let api: KubeJsonClient;

async function isAllocated(value: string | number): Promise<boolean> {
  if (typeof value === 'number') {
    const allocator = allocators.nodePorts.newAllocator();
    allocator.restore(await allocators.nodePorts.store.read());
    return allocator.has(value);
  }
  const handle = allocators.clusterIP('IPv4')!;
  const allocator = handle.newAllocator();
  allocator.restore(await handle.store.read());
  return allocator.has(value);
}

/** Writes a Service holding `ip` (and `nodePort`), as the webhook would have allocated them. */
async function createHolding(name: string, ip: string, nodePort?: number): Promise<void> {
  await createServiceHolding(core, name, ip, nodePort);
  await waitFor(() => services.get(`default/${name}`) !== undefined, `${name} in the cache`);
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
  const releaser = new ServiceAllocationReleaser({ allocators, services, logger, maxPendingAgeMs: 60_000 });
  controller = new Controller({ name: 'service-allocation-release-test', reconciler: releaser, logger });
  services.addEventHandler({
    onDelete: (service) => {
      const key = releaser.serviceDeleted(service);
      if (key !== undefined) controller.enqueue(key);
    },
    onUpdate: (old, next) => {
      const key = releaser.serviceUpdated(old, next);
      if (key !== undefined) controller.enqueue(key);
    },
  });
  services.start();
  await services.waitForSync();
  controller.run();
});

after(async () => {
  await controller?.stop(1000);
  await services?.stop();
  api?.close();
  await apiServer?.close();
});

describe('release controller', () => {
  test('deleting a Service releases its ClusterIP and node port', async () => {
    await allocators.clusterIP('IPv4')!.store.allocate('198.19.1.1');
    await allocators.nodePorts.store.allocate(30111);
    await createHolding('gone', '198.19.1.1', 30111);
    await core.deleteNamespacedService({ namespace: 'default', name: 'gone' });
    await waitFor(
      async () => !(await isAllocated('198.19.1.1')) && !(await isAllocated(30111)),
      'the release',
    );
  });

  test('an address another Service holds now is not released', async () => {
    await allocators.clusterIP('IPv4')!.store.allocate('198.19.2.2');
    await createHolding('first', '198.19.2.2');
    await createHolding('second', '198.19.2.2');
    await core.deleteNamespacedService({ namespace: 'default', name: 'first' });
    await waitFor(() => services.get('default/first') === undefined, 'the delete in the cache');
    await controller.whenIdle();
    assert.equal(await isAllocated('198.19.2.2'), true, 'second still holds it');
    await core.deleteNamespacedService({ namespace: 'default', name: 'second' });
    await waitFor(async () => !(await isAllocated('198.19.2.2')), 'the release after the last holder left');
  });

  test('an update that drops a node port releases it and keeps the ClusterIP', async () => {
    await allocators.clusterIP('IPv4')!.store.allocate('198.19.3.3');
    await allocators.nodePorts.store.allocate(30333);
    await createHolding('typed', '198.19.3.3', 30333);
    await core.patchNamespacedService(
      {
        namespace: 'default',
        name: 'typed',
        body: [
          { op: 'replace', path: '/spec/type', value: 'ClusterIP' },
          { op: 'remove', path: '/spec/ports/0/nodePort' },
          { op: 'remove', path: '/spec/externalTrafficPolicy' },
        ],
      },
      setHeaderOptions('Content-Type', 'application/json-patch+json'),
    );
    await waitFor(async () => !(await isAllocated(30333)), 'the node port release');
    assert.equal(await isAllocated('198.19.3.3'), true);
  });
});

describe('release bookkeeping', () => {
  test('a release older than the limit is left to the repair loop', async () => {
    let now = 0;
    const released: unknown[] = [];
    const fakeAllocators = {
      clusterIP: () => ({ store: { transact: async (ops: unknown[]) => released.push(...ops) } }),
      nodePorts: { store: { transact: async (ops: unknown[]) => released.push(...ops) } },
    } as unknown as ServiceAllocators;
    const releaser = new ServiceAllocationReleaser({
      allocators: fakeAllocators,
      services: { byIndex: () => [] },
      logger: testLogger(),
      maxPendingAgeMs: 1000,
      now: () => now,
    });
    const old: V1Service = {
      metadata: { namespace: 'default', name: 'x' },
      spec: { clusterIPs: ['198.19.9.9'] },
    };
    const key = releaser.serviceDeleted(old)!;
    now = 1001;
    await releaser.reconcile(key);
    assert.deepEqual(released, []);
    assert.equal(releaser.pendingCount, 0);
  });
});
