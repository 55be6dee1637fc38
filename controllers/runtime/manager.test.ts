import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoordinationV1Api, CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { ApiServer } from '../../e2e/apiserver/index.ts';
import { Controller } from './controller.ts';
import { Informer, objectKey } from './informer.ts';
import { type ListenAddress, Manager, parseListenAddress } from './manager.ts';
import { kubeConfigFor, startTestApiServer, testLogger, waitFor } from './testing/harness.ts';

describe('parseListenAddress', () => {
  test('accepts :port, host:port and [ipv6]:port', () => {
    assert.deepEqual(parseListenAddress(':8081', '--health-addr'), { host: '', port: 8081 });
    assert.deepEqual(parseListenAddress('127.0.0.1:0', '--health-addr'), { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parseListenAddress('[::1]:8080', '--metrics-addr'), { host: '::1', port: 8080 });
  });

  test('rejects anything else naming the flag and the value', () => {
    for (const bad of ['8081', 'localhost', ':', ':99999', '::1:80']) {
      assert.throws(
        () => parseListenAddress(bad, '--health-addr'),
        new RegExp(
          `^Error: --health-addr: Invalid value: ${JSON.stringify(bad).replace(/[[\]]/g, '\\$&')}: must be host:port`,
        ),
      );
    }
  });
});

describe('Manager against the local API server', () => {
  const namespace = 'manager-test';
  const timing = { leaseDurationMs: 2_000, renewDeadlineMs: 1_200, retryPeriodMs: 200 };
  let server: ApiServer;
  let kubeConfig: KubeConfig;
  let core: CoreV1Api;
  let coordination: CoordinationV1Api;
  const managers: Manager[] = [];
  let counter = 0;

  before(async () => {
    server = await startTestApiServer();
    kubeConfig = kubeConfigFor(server.kubeconfigPath);
    core = kubeConfig.makeApiClient(CoreV1Api);
    coordination = kubeConfig.makeApiClient(CoordinationV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'existing' } } });
  });

  after(async () => {
    if (server?.faults.paused) server.faults.resume();
    await Promise.all(managers.map((manager) => manager.stop()));
    await server?.close();
  });

  /** A manager with a ConfigMap informer feeding a real Controller that records the keys it reconciles. */
  function newManager(leaseName: string | undefined) {
    const logger = testLogger();
    const reconciled: string[] = [];
    const controller = new Controller({
      name: `recorder-${++counter}`,
      logger,
      reconciler: {
        reconcile: async (key) => {
          reconciled.push(key);
          return undefined;
        },
      },
    });
    const informer = new Informer<V1ConfigMap>({
      kubeConfig,
      path: `/api/v1/namespaces/${namespace}/configmaps`,
      name: `configmaps-${counter}`,
      restartBackoff: { initialMs: 50, maxMs: 200 },
      logger,
    });
    informer.addEventHandler({
      onAdd: (obj) => controller.enqueue(objectKey(obj)),
      onUpdate: (_, obj) => controller.enqueue(objectKey(obj)),
      onDelete: (obj) => controller.enqueue(objectKey(obj)),
    });
    const manager = new Manager({
      kubeConfig,
      logger,
      healthAddress: { host: '127.0.0.1', port: 0 },
      shutdownTimeoutMs: 3_000,
      ...(leaseName
        ? { leaderElection: { namespace, leaseName, identity: `manager-${counter}`, timing } }
        : {}),
    });
    manager.addInformer(informer);
    manager.addController(controller);
    managers.push(manager);
    return { manager, reconciled };
  }

  function url(address: ListenAddress, path: string): string {
    return `http://127.0.0.1:${address.port}${path}`;
  }

  async function holder(leaseName: string): Promise<string> {
    const lease = await coordination.readNamespacedLease({ name: leaseName, namespace });
    return lease.spec?.holderIdentity ?? '';
  }

  test('/readyz answers 503 until the caches have synced, /healthz and /metrics answer throughout', async () => {
    const { manager } = newManager(undefined);
    server.faults.pause();
    try {
      await manager.start();
      const [address] = manager.addresses();
      const notReady = await fetch(url(address!, '/readyz'));
      assert.equal(notReady.status, 503);
      assert.match(await notReady.text(), /caches not synced: configmaps-/);
      assert.equal((await fetch(url(address!, '/healthz'))).status, 200);
      assert.match(
        await (await fetch(url(address!, '/metrics'))).text(),
        /portico_leader_election_is_leader/,
      );
    } finally {
      server.faults.resume();
    }
    const [address] = manager.addresses();
    await waitFor(async () => (await fetch(url(address!, '/readyz'))).status === 200, 'readiness');
    assert.equal((await fetch(url(address!, '/nothing'))).status, 404);
    await manager.stop();
    assert.equal(await manager.done, 'stopped');
  });

  test('metrics can be served on their own address', async () => {
    const logger = testLogger();
    const manager = new Manager({
      kubeConfig,
      logger,
      healthAddress: { host: '127.0.0.1', port: 0 },
      metricsAddress: { host: '127.0.0.1', port: 0 },
    });
    managers.push(manager);
    await manager.start();
    const [health, metrics] = manager.addresses();
    assert.notEqual(health!.port, metrics!.port);
    assert.equal((await fetch(url(health!, '/readyz'))).status, 200, 'no informers: ready at once');
    assert.match(
      await (await fetch(url(metrics!, '/metrics'))).text(),
      /portico_leader_election_is_leader\{lease="none"\} 1/,
    );
    await manager.stop();
  });

  test('without leader election controllers run as soon as the caches have synced', async () => {
    const { manager, reconciled } = newManager(undefined);
    await manager.start();
    await waitFor(() => reconciled.includes(`${namespace}/existing`), 'the existing object to be reconciled');
    assert.equal(manager.isLeader(), true);
    await manager.stop();
  });

  test('controllers run only on the leader; a clean stop releases the lease to the standby at once', async () => {
    const first = newManager('handover');
    await first.manager.start();
    await waitFor(() => first.manager.isLeader(), 'the first manager to lead');
    const second = newManager('handover');
    await second.manager.start();
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'while-first-leads' } } });
    await waitFor(
      () => first.reconciled.includes(`${namespace}/while-first-leads`),
      'the leader to reconcile',
    );
    await new Promise((resolve) => setTimeout(resolve, 3 * timing.retryPeriodMs));
    assert.deepEqual(second.reconciled, [], 'the standby reconciles nothing');
    assert.equal(second.manager.isLeader(), false);
    assert.equal(second.manager.isReady(), true, 'the standby has warm caches');

    const stoppedAt = Date.now();
    await first.manager.stop();
    await waitFor(() => second.manager.isLeader(), 'the standby to lead');
    const handoverMs = Date.now() - stoppedAt;
    assert.ok(handoverMs < timing.leaseDurationMs, `handover took ${handoverMs} ms`);
    assert.equal(await holder('handover'), 'manager-' + String(counter));
    // Keys the standby's informer saw while it was standby are reconciled once it leads.
    await waitFor(
      () => second.reconciled.includes(`${namespace}/while-first-leads`),
      'the new leader to reconcile',
    );
    await second.manager.stop();
    assert.equal(await holder('handover'), '');
  });

  test('a manager whose lease is taken stops its controllers and finishes with lost-leadership', async () => {
    const { manager, reconciled } = newManager('stolen');
    await manager.start();
    await waitFor(() => reconciled.length > 0, 'the controller to run');
    const lease = await coordination.readNamespacedLease({ name: 'stolen', namespace });
    await coordination.replaceNamespacedLease({
      name: 'stolen',
      namespace,
      body: { ...lease, spec: { ...lease.spec, holderIdentity: 'someone-else' } },
    });
    assert.equal(await manager.done, 'lost-leadership');
    const before = reconciled.length;
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'after-loss' } } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(reconciled.length, before, 'no reconcile after losing leadership');
    assert.equal(await holder('stolen'), 'someone-else', 'a manager that lost the lease does not release it');
  });
});
