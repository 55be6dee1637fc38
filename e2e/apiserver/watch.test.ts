import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, makeInformer, type V1ConfigMap } from '@kubernetes/client-node';
import { type ApiServer, startApiServer } from './index.ts';
import { call, eventually, kubeConfigFor, openWatch } from './test-helpers.ts';

let server: ApiServer;

before(async () => {
  server = await startApiServer({ historyWindow: 50, bookmarkIntervalMs: 100 });
});
after(() => server.close());

async function createCm(
  ns: string,
  name: string,
  data: Record<string, string> = {},
  labels: Record<string, string> = {},
): Promise<string> {
  const res = await call(server, 'POST', `/api/v1/namespaces/${ns}/configmaps`, {
    body: { metadata: { name, labels }, data },
  });
  assert.equal(res.status, 201, res.text);
  return (res.body.metadata as { resourceVersion: string }).resourceVersion;
}

async function patchCm(ns: string, name: string, patch: unknown): Promise<void> {
  const res = await call(server, 'PATCH', `/api/v1/namespaces/${ns}/configmaps/${name}`, {
    body: patch,
    contentType: 'application/merge-patch+json',
  });
  assert.equal(res.status, 200, res.text);
}

describe('watch', () => {
  test('from a resourceVersion replays every later event in order, then streams new ones', async () => {
    const start = await createCm('default', 'w1');
    await patchCm('default', 'w1', { data: { a: '1' } });
    await createCm('default', 'w2');
    await call(server, 'DELETE', '/api/v1/namespaces/default/configmaps/w1');
    const watch = openWatch(
      server,
      `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${start}`,
    );
    await eventually('three replayed events', () => watch.events.length === 3);
    await createCm('default', 'w3');
    await eventually('the live event', () => watch.events.length === 4);
    watch.stop();
    assert.deepEqual(
      watch.events.map((e) => `${e.type} ${(e.object.metadata as { name: string }).name}`),
      ['MODIFIED w1', 'ADDED w2', 'DELETED w1', 'ADDED w3'],
    );
    const versions = watch.events.map((e) =>
      Number((e.object.metadata as { resourceVersion: string }).resourceVersion),
    );
    assert.deepEqual(
      versions,
      [...versions].sort((a, b) => a - b),
    );
    assert.ok(versions[0]! > Number(start));
  });

  test('without a resourceVersion only changes from now on arrive', async () => {
    await createCm('kube-public', 'before');
    const watch = openWatch(server, '/api/v1/namespaces/kube-public/configmaps?watch=1');
    assert.equal(await watch.status, 200);
    await createCm('kube-public', 'after');
    await eventually('one event', () => watch.events.length === 1);
    watch.stop();
    assert.equal((watch.events[0]!.object.metadata as { name: string }).name, 'after');
  });

  test('resourceVersion=0 starts with the current objects as ADDED events', async () => {
    await call(server, 'POST', '/api/v1/namespaces', { body: { metadata: { name: 'zero' } } });
    await createCm('zero', 'existing');
    const watch = openWatch(server, '/api/v1/namespaces/zero/configmaps?watch=true&resourceVersion=0');
    await eventually('the synthetic ADDED', () => watch.events.length === 1);
    await createCm('zero', 'new');
    await eventually('the live event', () => watch.events.length === 2);
    watch.stop();
    assert.deepEqual(
      watch.events.map((e) => `${e.type} ${(e.object.metadata as { name: string }).name}`),
      ['ADDED existing', 'ADDED new'],
    );
  });

  test('a label-selected watch sees objects entering and leaving the selection as ADDED and DELETED', async () => {
    await createCm('default', 'sel', {}, { tier: 'a' });
    const watch = openWatch(
      server,
      '/api/v1/namespaces/default/configmaps?watch=true&labelSelector=tier%3Db',
    );
    await watch.status;
    await patchCm('default', 'sel', { metadata: { labels: { tier: 'b' } } });
    await patchCm('default', 'sel', { data: { x: '1' } });
    await patchCm('default', 'sel', { metadata: { labels: { tier: 'c' } } });
    await eventually('three events', () => watch.events.length === 3);
    watch.stop();
    assert.deepEqual(
      watch.events.map((e) => e.type),
      ['ADDED', 'MODIFIED', 'DELETED'],
    );
  });

  test('a resourceVersion older than the history window gets a 410 Expired ERROR event', async () => {
    const old = await createCm('default', 'old');
    for (let i = 0; i < 60; i++) await patchCm('default', 'old', { data: { i: String(i) } });
    const watch = openWatch(
      server,
      `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${old}`,
    );
    await watch.closed;
    assert.equal(watch.events.length, 1);
    assert.equal(watch.events[0]!.type, 'ERROR');
    assert.equal(watch.events[0]!.object.code, 410);
    assert.equal(watch.events[0]!.object.reason, 'Expired');
  });

  test('allowWatchBookmarks sends BOOKMARK events; timeoutSeconds ends the watch', async () => {
    const watch = openWatch(
      server,
      '/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&timeoutSeconds=1',
    );
    const started = Date.now();
    await watch.closed;
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 900 && elapsed < 3000, `closed after ${elapsed} ms`);
    const bookmarks = watch.events.filter((e) => e.type === 'BOOKMARK');
    assert.ok(bookmarks.length >= 3, `got ${bookmarks.length} bookmarks`);
    assert.equal(
      (bookmarks[0]!.object.metadata as { resourceVersion: string }).resourceVersion,
      String(server.store.currentRevision()),
    );
  });

  test('sendInitialEvents streams the current objects then a bookmark marking their end', async () => {
    await call(server, 'POST', '/api/v1/namespaces', { body: { metadata: { name: 'initial' } } });
    await createCm('initial', 'a');
    await createCm('initial', 'b');
    const watch = openWatch(
      server,
      '/api/v1/namespaces/initial/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan',
    );
    await eventually('initial events', () => watch.events.some((e) => e.type === 'BOOKMARK'));
    watch.stop();
    assert.deepEqual(
      watch.events.slice(0, 2).map((e) => `${e.type} ${(e.object.metadata as { name: string }).name}`),
      ['ADDED a', 'ADDED b'],
    );
    assert.deepEqual(
      (watch.events[2]!.object.metadata as { annotations: Record<string, string> }).annotations,
      {
        'k8s.io/initial-events-end': 'true',
      },
    );
  });
});

describe('fault injection', () => {
  test('dropWatches ends every open watch', async () => {
    const a = openWatch(server, '/api/v1/configmaps?watch=true');
    const b = openWatch(server, '/api/v1/pods?watch=true');
    await Promise.all([a.status, b.status]);
    server.faults.dropWatches();
    await Promise.all([a.closed, b.closed]);
  });

  test('failNext answers the next requests with 500 or 429 with Retry-After, then recovers', async () => {
    server.faults.failNext(1, { code: 500 });
    server.faults.failNext(1, { code: 429, retryAfterSeconds: 3 });
    const first = await call(server, 'GET', '/api/v1/namespaces');
    assert.equal(first.status, 500);
    assert.equal(first.body.reason, 'InternalError');
    const second = await call(server, 'GET', '/api/v1/namespaces');
    assert.equal(second.status, 429);
    assert.equal(second.body.reason, 'TooManyRequests');
    assert.equal(second.headers['retry-after'], '3');
    assert.equal((await call(server, 'GET', '/api/v1/namespaces')).status, 200);
  });

  test('setLatency delays requests; pause holds them until resume', async () => {
    server.faults.setLatency(150);
    let started = Date.now();
    await call(server, 'GET', '/api/v1/namespaces');
    assert.ok(Date.now() - started >= 140);
    server.faults.setLatency(0);
    server.faults.pause();
    started = Date.now();
    const held = call(server, 'GET', '/api/v1/namespaces');
    setTimeout(() => server.faults.resume(), 200);
    assert.equal((await held).status, 200);
    assert.ok(Date.now() - started >= 190);
  });

  test('events are held during a pause and delivered in order after resume', async () => {
    const watch = openWatch(server, '/api/v1/namespaces/default/configmaps?watch=true');
    await watch.status;
    server.faults.pause();
    await server.registry.create(
      server.registry.catalog.find('', 'v1', 'configmaps')!,
      'default',
      { metadata: { name: 'paused' } },
      { dryRun: false, user: { username: 'test', groups: [] } },
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(watch.events.length, 0);
    server.faults.resume();
    await eventually('the held event', () => watch.events.length === 1);
    watch.stop();
  });
});

describe('client-node informer through faults', () => {
  test('keeps an exact cache through dropped watches, 410 on resume and a run of 500s and 429s', async () => {
    await call(server, 'POST', '/api/v1/namespaces', { body: { metadata: { name: 'informed' } } });
    const kc = kubeConfigFor(server);
    const core = kc.makeApiClient(CoreV1Api);
    const informer = makeInformer<V1ConfigMap>(kc, '/api/v1/namespaces/informed/configmaps', () =>
      core.listNamespacedConfigMap({ namespace: 'informed' }),
    );
    let stopped = false;
    informer.on('error', () => {
      if (!stopped) setTimeout(() => void informer.start(), 50);
    });
    await informer.start();
    const expected = (): string[] =>
      server.store
        .list('/configmaps', 'informed')
        .map(
          (o) =>
            `${(o.metadata as { name: string }).name}@${(o.metadata as { resourceVersion: string }).resourceVersion}`,
        )
        .sort();
    const cached = (): string[] =>
      informer
        .list()
        .map((o) => `${o.metadata?.name}@${o.metadata?.resourceVersion}`)
        .sort();
    const converged = (what: string) =>
      eventually(what, () => JSON.stringify(cached()) === JSON.stringify(expected()), 10_000);
    try {
      for (let i = 0; i < 5; i++) await createCm('informed', `cm${i}`);
      await converged('initial objects');

      server.faults.dropWatches();
      await patchCm('informed', 'cm0', { data: { v: '1' } });
      await call(server, 'DELETE', '/api/v1/namespaces/informed/configmaps/cm1');
      await converged('changes across a dropped watch');

      server.faults.compactHistory();
      server.faults.dropWatches();
      await createCm('informed', 'cm5');
      await call(server, 'DELETE', '/api/v1/namespaces/informed/configmaps/cm2');
      await converged('changes across a 410 relist');

      server.faults.failNext(3, { code: 500 });
      server.faults.dropWatches();
      await server.registry.delete(
        server.registry.catalog.find('', 'v1', 'configmaps')!,
        'informed',
        'cm3',
        {},
        {
          dryRun: false,
          user: { username: 'test', groups: [] },
        },
      );
      await converged('changes across 500s');

      server.faults.failNext(2, { code: 429, retryAfterSeconds: 1 });
      server.faults.compactHistory();
      server.faults.dropWatches();
      await server.registry.create(
        server.registry.catalog.find('', 'v1', 'configmaps')!,
        'informed',
        { metadata: { name: 'cm6' } },
        {
          dryRun: false,
          user: { username: 'test', groups: [] },
        },
      );
      await converged('changes across 429s and a relist');
      assert.deepEqual(
        informer
          .list()
          .map((o) => o.metadata?.name)
          .sort(),
        ['cm0', 'cm4', 'cm5', 'cm6'],
      );
    } finally {
      stopped = true;
      await informer.stop();
    }
  });
});
