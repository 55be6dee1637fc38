import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CoreV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type V1ConfigMap,
} from '@kubernetes/client-node';
import type { ApiServer } from '../../e2e/apiserver/index.ts';
import {
  IndexedStore,
  Informer,
  listInPages,
  NAMESPACE_INDEX,
  objectKey,
  restartDelayMs,
  splitObjectKey,
  withItemKinds,
} from './informer.ts';
import { getJson } from './kube.ts';
import { metricsRegistry } from './metrics.ts';
import { CuttingProxy, kubeConfigFor, startTestApiServer, testLogger, waitFor } from './testing/harness.ts';

function configMap(namespace: string, name: string, labels: Record<string, string> = {}): V1ConfigMap {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace, name, labels }, data: { v: '0' } };
}

describe('IndexedStore', () => {
  const byApp = (obj: V1ConfigMap) => (obj.metadata?.labels?.['app'] ? [obj.metadata.labels['app']] : []);

  test('gets by key and lists by namespace and by custom index', () => {
    const store = new IndexedStore<V1ConfigMap>({ app: byApp });
    store.upsert(configMap('a', 'one', { app: 'web' }));
    store.upsert(configMap('b', 'two', { app: 'web' }));
    store.upsert(configMap('a', 'three', { app: 'db' }));
    assert.equal(store.get('a/one')?.metadata?.name, 'one');
    assert.equal(store.get('b/one'), undefined);
    assert.deepEqual(store.byIndex(NAMESPACE_INDEX, 'a').map(objectKey).sort(), ['a/one', 'a/three']);
    assert.deepEqual(store.byIndex('app', 'web').map(objectKey).sort(), ['a/one', 'b/two']);
    assert.deepEqual(store.byIndex('app', 'cache'), []);
  });

  test('an update moves the object between index buckets and removal empties them', () => {
    const store = new IndexedStore<V1ConfigMap>({ app: byApp });
    store.upsert(configMap('a', 'one', { app: 'web' }));
    const previous = store.upsert(configMap('a', 'one', { app: 'db' }));
    assert.equal(previous?.metadata?.labels?.['app'], 'web');
    assert.deepEqual(store.byIndex('app', 'web'), []);
    assert.deepEqual(store.byIndex('app', 'db').map(objectKey), ['a/one']);
    assert.equal(store.remove('a/one')?.metadata?.name, 'one');
    assert.equal(store.remove('a/one'), undefined);
    assert.deepEqual(store.indexValues('app'), []);
    assert.deepEqual(store.indexValues(NAMESPACE_INDEX), []);
    assert.equal(store.size, 0);
  });

  test('an update that keeps its index values is found there in its new version, once', () => {
    const store = new IndexedStore<V1ConfigMap>({
      twice: (obj) => [obj.metadata?.name ?? '', obj.metadata?.name ?? ''],
    });
    store.upsert({ ...configMap('a', 'one', { app: 'web' }), data: { v: '1' } });
    store.upsert({ ...configMap('a', 'one', { app: 'web' }), data: { v: '2' } });
    assert.deepEqual(
      store.byIndex('twice', 'one').map((obj) => obj.data),
      [{ v: '2' }],
    );
    assert.deepEqual(
      store.byIndex(NAMESPACE_INDEX, 'a').map((obj) => obj.data),
      [{ v: '2' }],
    );
    store.remove('a/one');
    assert.deepEqual(store.indexValues('twice'), []);
  });

  test('an object filed under several values is found under each', () => {
    const store = new IndexedStore<V1ConfigMap>({ keys: (obj) => Object.keys(obj.data ?? {}) });
    store.upsert({ metadata: { name: 'cluster-scoped' }, data: { x: '1', y: '2' } });
    assert.deepEqual(store.byIndex('keys', 'x').map(objectKey), ['cluster-scoped']);
    assert.deepEqual(store.byIndex('keys', 'y').map(objectKey), ['cluster-scoped']);
    assert.deepEqual(store.byIndex(NAMESPACE_INDEX, '').map(objectKey), ['cluster-scoped']);
  });

  test('asking for an undeclared index names the declared ones', () => {
    const store = new IndexedStore<V1ConfigMap>({ app: byApp });
    assert.throws(
      () => store.byIndex('owner', 'x'),
      /index "owner" does not exist: declared indexes: "app", "namespace"/,
    );
  });
});

describe('object keys and restart backoff', () => {
  test('keys are namespace/name, or name for cluster-scoped objects, and split back', () => {
    assert.equal(objectKey(configMap('ns', 'n')), 'ns/n');
    assert.equal(objectKey({ metadata: { name: 'node-1' } }), 'node-1');
    assert.deepEqual(splitObjectKey('ns/n'), { namespace: 'ns', name: 'n' });
    assert.deepEqual(splitObjectKey('node-1'), { namespace: '', name: 'node-1' });
  });

  test('listed items get the kind and apiVersion of their list, as watched objects have', () => {
    const list = withItemKinds({
      apiVersion: 'v1',
      kind: 'ConfigMapList',
      items: [{ metadata: { name: 'a' } }],
    });
    assert.deepEqual(list.items[0], { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } });
  });

  test('restart delays double from the initial delay up to the cap', () => {
    const backoff = { initialMs: 100, maxMs: 1000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 50].map((attempt) => restartDelayMs(attempt, backoff)),
      [100, 200, 400, 800, 1000, 1000],
    );
  });
});

/** key → resourceVersion of a list of objects. */
function versions(objects: readonly V1ConfigMap[]): Map<string, string> {
  return new Map(objects.map((obj) => [objectKey(obj), obj.metadata?.resourceVersion ?? '']));
}

describe('Informer against the local API server', () => {
  const namespace = 'informer-test';
  let server: ApiServer;
  let direct: KubeConfig;
  let core: CoreV1Api;
  let proxy: CuttingProxy;
  let counter = 0;

  before(async () => {
    server = await startTestApiServer();
    direct = kubeConfigFor(server.kubeconfigPath);
    core = direct.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    proxy = await CuttingProxy.start(Number(new URL(server.url).port));
  });

  after(async () => {
    await proxy?.close();
    await server?.close();
  });

  /** The server's current state, from a fresh list that bypasses the proxy. */
  async function serverState(): Promise<Map<string, string>> {
    const list = (await getJson(direct, `/api/v1/namespaces/${namespace}/configmaps`)) as {
      items: V1ConfigMap[];
    };
    return versions(list.items);
  }

  /**
   * An informer through the proxy, plus a mirror built only from the events it delivers: when the
   * mirror equals the server, no add, update or delete was lost.
   */
  async function startInformer(options: { resyncPeriodMs?: number } = {}) {
    const kubeConfig = kubeConfigFor(server.kubeconfigPath, proxy.url);
    const path = `/api/v1/namespaces/${namespace}/configmaps`;
    let lists = 0;
    const informer = new Informer<V1ConfigMap>({
      kubeConfig,
      path,
      list: async () => {
        lists += 1;
        return withItemKinds((await getJson(kubeConfig, path)) as KubernetesListObject<V1ConfigMap>);
      },
      name: `configmaps-${++counter}`,
      indexers: { app: (obj) => (obj.metadata?.labels?.['app'] ? [obj.metadata.labels['app']] : []) },
      restartBackoff: { initialMs: 50, maxMs: 400 },
      logger: testLogger(),
      ...options,
    });
    const mirror = new Map<string, string>();
    const deleted: string[] = [];
    let resyncs = 0;
    informer.addEventHandler({
      onAdd: (obj) => mirror.set(objectKey(obj), obj.metadata?.resourceVersion ?? ''),
      onUpdate: (oldObj, newObj) => {
        if (oldObj === newObj) resyncs += 1;
        mirror.set(objectKey(newObj), newObj.metadata?.resourceVersion ?? '');
      },
      onDelete: (obj) => {
        mirror.delete(objectKey(obj));
        deleted.push(objectKey(obj));
      },
    });
    informer.start();
    await informer.waitForSync(AbortSignal.timeout(10_000));
    return { informer, mirror, deleted, resyncs: () => resyncs, lists: () => lists };
  }

  async function assertConverges(informer: Informer<V1ConfigMap>, mirror: Map<string, string>) {
    let expected = new Map<string, string>();
    await waitFor(async () => {
      // Injected faults hit this check's own list too; a failed check just polls again.
      const state = await serverState().catch(() => undefined);
      if (state === undefined) return false;
      expected = state;
      const cached = versions(informer.list());
      return JSON.stringify([...cached].sort()) === JSON.stringify([...expected].sort());
    }, 'the informer cache to equal a fresh list');
    assert.deepEqual(new Map([...versions(informer.list())].sort()), new Map([...expected].sort()));
    assert.deepEqual(
      new Map([...mirror].sort()),
      new Map([...expected].sort()),
      'events delivered to handlers',
    );
    for (const key of expected.keys()) {
      assert.equal(informer.get(key)?.metadata?.resourceVersion, expected.get(key));
    }
  }

  function restarts(informer: Informer<V1ConfigMap>): Promise<number> {
    return metricsRegistry
      .getSingleMetric('portico_informer_restarts_total')!
      .get()
      .then(
        (metric) => metric.values.find((value) => value.labels['informer'] === informer.name)?.value ?? 0,
      );
  }

  test('lists, then watches adds, updates and deletes into an indexed cache', async () => {
    await core.createNamespacedConfigMap({
      namespace,
      body: configMap(namespace, 'basic-before', { app: 'web' }),
    });
    const { informer, mirror } = await startInformer();
    try {
      assert.equal(informer.hasSynced(), true);
      assert.equal(informer.get(`${namespace}/basic-before`)?.metadata?.name, 'basic-before');
      assert.equal(
        informer.get(`${namespace}/basic-before`)?.kind,
        'ConfigMap',
        'listed items carry their kind',
      );
      await core.createNamespacedConfigMap({
        namespace,
        body: configMap(namespace, 'basic-after', { app: 'db' }),
      });
      await core.patchNamespacedConfigMap({
        namespace,
        name: 'basic-before',
        body: [{ op: 'replace', path: '/metadata/labels/app', value: 'db' }],
      });
      await waitFor(() => informer.byIndex('app', 'db').length === 2, 'both objects under app=db');
      assert.deepEqual(informer.byIndex('app', 'web'), []);
      assert.equal(informer.listInNamespace(namespace).length >= 2, true);
      await core.deleteNamespacedConfigMap({ namespace, name: 'basic-after' });
      await waitFor(() => informer.get(`${namespace}/basic-after`) === undefined, 'the delete to arrive');
      await assertConverges(informer, mirror);
    } finally {
      await informer.stop();
    }
  });

  test('a watch connection cut in the middle of an event resumes without losing events', async () => {
    const { informer, mirror, lists } = await startInformer();
    try {
      const listsBefore = lists();
      const cutsBefore = proxy.cuts;
      const restartsBefore = await restarts(informer);
      proxy.cutNextChunk();
      await core.createNamespacedConfigMap({ namespace, body: configMap(namespace, 'cut-1') });
      await waitFor(() => proxy.cuts > cutsBefore, 'the proxy to cut the watch');
      // Changes while the informer is reconnecting must arrive through the resumed watch.
      await core.createNamespacedConfigMap({ namespace, body: configMap(namespace, 'cut-2') });
      await core.deleteNamespacedConfigMap({ namespace, name: 'cut-1' });
      await assertConverges(informer, mirror);
      assert.ok((await restarts(informer)) > restartsBefore, 'the informer restarted after the cut');
      assert.equal(lists(), listsBefore, 'it resumed the watch instead of relisting');
    } finally {
      await informer.stop();
    }
  });

  test('a cleanly dropped watch resumes from the last resourceVersion', async () => {
    const { informer, mirror } = await startInformer();
    try {
      server.faults.dropWatches();
      await core.createNamespacedConfigMap({ namespace, body: configMap(namespace, 'drop-1') });
      server.faults.dropWatches();
      await core.replaceNamespacedConfigMap({
        namespace,
        name: 'drop-1',
        body: { ...configMap(namespace, 'drop-1'), data: { v: '1' } },
      });
      await assertConverges(informer, mirror);
    } finally {
      await informer.stop();
    }
  });

  test('410 Gone on resume relists and delivers objects that vanished as deletes', async () => {
    await core.createNamespacedConfigMap({ namespace, body: configMap(namespace, 'gone-1') });
    await core.createNamespacedConfigMap({ namespace, body: configMap(namespace, 'gone-2') });
    const { informer, mirror, deleted, lists } = await startInformer();
    const configmaps = server.registry.catalog.find('', 'v1', 'configmaps')!;
    const writer = { dryRun: false, user: { username: 'informer-test', groups: ['system:masters'] } };
    try {
      const listsBefore = lists();
      // Hold the informer's reconnect while history moves on and is compacted behind it.
      server.faults.pause();
      server.faults.dropWatches();
      await server.registry.delete(configmaps, namespace, 'gone-1', {}, writer);
      await server.registry.create(configmaps, namespace, configMap(namespace, 'gone-3'), writer);
      const current = server.registry.get(configmaps, namespace, 'gone-2');
      await server.registry.update(configmaps, namespace, 'gone-2', { ...current, data: { v: '2' } }, writer);
      server.faults.compactHistory();
      server.faults.resume();
      await assertConverges(informer, mirror);
      assert.ok(deleted.includes(`${namespace}/gone-1`), 'the vanished object was delivered as a delete');
      assert.equal(lists(), listsBefore + 1, 'the 410 caused exactly one relist');
    } finally {
      if (server.faults.paused) server.faults.resume();
      await informer.stop();
    }
  });

  test('500s and 429s on list and watch are retried with backoff until the cache converges', async () => {
    const { informer, mirror } = await startInformer();
    const configmaps = server.registry.catalog.find('', 'v1', 'configmaps')!;
    const writer = { dryRun: false, user: { username: 'informer-test', groups: ['system:masters'] } };
    try {
      const restartsBefore = await restarts(informer);
      server.faults.failNext(3, { code: 500 });
      server.faults.failNext(2, { code: 429, retryAfterSeconds: 1 });
      server.faults.dropWatches();
      // Written behind the API so the injected failures hit only the informer's requests.
      await server.registry.create(configmaps, namespace, configMap(namespace, 'flaky-1'), writer);
      await server.registry.delete(configmaps, namespace, 'basic-before', {}, writer);
      await assertConverges(informer, mirror);
      // The convergence check's own lists take some of the injected failures, so count loosely.
      assert.ok((await restarts(informer)) > restartsBefore, 'the failures caused restarts');
    } finally {
      await informer.stop();
    }
  });

  test('an API server failing the first lists still syncs the informer', async () => {
    server.faults.failNext(2, { code: 500 });
    const { informer, mirror } = await startInformer();
    try {
      await assertConverges(informer, mirror);
    } finally {
      await informer.stop();
    }
  });

  test('a periodic resync re-delivers cached objects as updates without changing them', async () => {
    const { informer, resyncs } = await startInformer({ resyncPeriodMs: 50 });
    try {
      const size = informer.list().length;
      assert.ok(size > 0);
      await waitFor(() => resyncs() >= 2 * size, 'two resyncs');
      assert.equal(informer.list().length, size);
    } finally {
      await informer.stop();
    }
  });
});

describe('Informer lists in pages', () => {
  const namespace = 'informer-pages';
  let server: ApiServer;
  let kubeConfig: KubeConfig;
  let core: CoreV1Api;

  before(async () => {
    server = await startTestApiServer();
    kubeConfig = kubeConfigFor(server.kubeconfigPath);
    core = kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    for (let n = 0; n < 11; n++) {
      await core.createNamespacedConfigMap({
        namespace,
        body: configMap(namespace, `page-${n}`, { app: n % 2 === 0 ? 'even' : 'odd' }),
      });
    }
  });

  after(async () => {
    await server?.close();
  });

  /** Counts the list requests the server answers, with and without a page limit. */
  function countLists(): { paged: number; whole: number; restore(): void } {
    const registry = server.registry;
    const original = registry.listShared;
    const counts = {
      paged: 0,
      whole: 0,
      restore: () => {
        registry.listShared = original;
      },
    };
    registry.listShared = (resource, ns, query) => {
      if (resource.plural === 'configmaps') {
        if (query.limit !== undefined) counts.paged += 1;
        else counts.whole += 1;
      }
      return original.call(registry, resource, ns, query);
    };
    return counts;
  }

  test('the default list follows continue tokens and caches every object with its kind', async () => {
    const counts = countLists();
    const informer = new Informer<V1ConfigMap>({
      kubeConfig,
      path: `/api/v1/namespaces/${namespace}/configmaps`,
      listPageSize: 3,
      labelSelector: 'app=even',
      logger: testLogger(),
    });
    try {
      informer.start();
      await informer.waitForSync(AbortSignal.timeout(10_000));
      assert.equal(counts.paged, 2, 'six objects in pages of three');
      assert.equal(counts.whole, 0);
      assert.deepEqual(
        informer
          .list()
          .map((obj) => obj.metadata?.name)
          .sort(),
        ['page-0', 'page-10', 'page-2', 'page-4', 'page-6', 'page-8'],
      );
      assert.ok(informer.list().every((obj) => obj.kind === 'ConfigMap' && obj.apiVersion === 'v1'));
      assert.notEqual(informer.lastResourceVersion(), '');
    } finally {
      counts.restore();
      await informer.stop();
    }
  });

  test('an expired continue token falls back to one whole list', async () => {
    const counts = countLists();
    const registry = server.registry;
    const paged = registry.listShared;
    // After the first page, history moves on and is compacted, so the page's token expires.
    registry.listShared = (resource, ns, query) => {
      const page = paged.call(registry, resource, ns, query);
      if (query.limit !== undefined && query.continueToken === undefined) {
        server.store.put('/configmaps', {
          metadata: { namespace: 'default', name: `bump-${Date.now()}`, uid: `bump-${Date.now()}` },
        });
        server.store.compact();
      }
      return page;
    };
    try {
      const list = await listInPages<V1ConfigMap>(
        kubeConfig,
        `/api/v1/namespaces/${namespace}/configmaps`,
        {},
        4,
      );
      assert.equal(list.items.length, 11);
      assert.equal(counts.paged, 2, 'the first page, then the expired second');
      assert.equal(counts.whole, 1);
      assert.equal(list.metadata?.resourceVersion, String(server.store.currentRevision()));
    } finally {
      registry.listShared = paged;
      counts.restore();
    }
  });

  test('a transform shapes listed and watched objects before the cache and the handlers see them', async () => {
    const informer = new Informer<V1ConfigMap>({
      kubeConfig,
      path: `/api/v1/namespaces/${namespace}/configmaps`,
      listPageSize: 4,
      transform: (obj) => {
        delete obj.data;
        return obj;
      },
      logger: testLogger(),
    });
    const delivered: V1ConfigMap[] = [];
    informer.addEventHandler({
      onAdd: (obj) => delivered.push(obj),
      onUpdate: (_old, obj) => delivered.push(obj),
      onDelete: (obj) => delivered.push(obj),
    });
    try {
      informer.start();
      await informer.waitForSync(AbortSignal.timeout(10_000));
      assert.equal(informer.list().length, 11);
      await core.createNamespacedConfigMap({ namespace, body: configMap(namespace, 'watched') });
      await core.replaceNamespacedConfigMap({
        namespace,
        name: 'watched',
        body: { ...configMap(namespace, 'watched'), data: { v: '1' } },
      });
      await core.deleteNamespacedConfigMap({ namespace, name: 'page-1' });
      await waitFor(
        () =>
          informer.get(`${namespace}/page-1`) === undefined &&
          informer.get(`${namespace}/watched`)?.metadata?.resourceVersion !== undefined &&
          delivered.length >= 14,
        'the watched add, update and delete',
      );
      assert.ok(delivered.length >= 14);
      assert.ok(
        delivered.every((obj) => obj.data === undefined),
        'no handler saw data',
      );
      assert.ok(
        informer.list().every((obj) => obj.data === undefined),
        'no cached object has data',
      );
      assert.equal(informer.get(`${namespace}/watched`)?.metadata?.name, 'watched');
    } finally {
      await informer.stop();
    }
  });
});
