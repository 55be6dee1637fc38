import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ApiServer, startApiServer } from './index.ts';
import type { JsonObject } from './patch.ts';
import { SYSTEM_USER } from './registry.ts';
import { ObjectStore } from './store.ts';
import { call } from './test-helpers.ts';

function configMap(namespace: string, name: string, data: Record<string, string> = {}): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { namespace, name, uid: `uid-${namespace}-${name}` },
    data,
  };
}

function names(objects: readonly JsonObject[]): string[] {
  return objects.map((object) => {
    const meta = object.metadata as { namespace?: string; name: string };
    return `${meta.namespace ?? ''}/${meta.name}`;
  });
}

describe('ObjectStore.listPage', () => {
  const key = '/configmaps';

  test('pages in key order from after a key, within a namespace, with the count of what follows', () => {
    const store = new ObjectStore();
    for (const namespace of ['b', 'a', 'a-z', 'c']) {
      for (const name of ['y', 'x', 'z']) store.put(key, configMap(namespace, name));
    }
    // '-' sorts before '/', so namespace 'a-z' comes first, as in etcd.
    assert.deepEqual(names(store.list(key)), [
      'a-z/x',
      'a-z/y',
      'a-z/z',
      'a/x',
      'a/y',
      'a/z',
      'b/x',
      'b/y',
      'b/z',
      'c/x',
      'c/y',
      'c/z',
    ]);
    const first = store.listPage(key, { limit: 5 });
    assert.deepEqual(names(first.items), ['a-z/x', 'a-z/y', 'a-z/z', 'a/x', 'a/y']);
    assert.equal(first.more, true);
    assert.equal(first.remaining, 7);
    const rest = store.listPage(key, { after: 'a/y' });
    assert.deepEqual(names(rest.items), ['a/z', 'b/x', 'b/y', 'b/z', 'c/x', 'c/y', 'c/z']);
    assert.equal(rest.more, false);
    assert.equal(rest.remaining, undefined);
    assert.deepEqual(names(store.listPage(key, { namespace: 'a' }).items), ['a/x', 'a/y', 'a/z']);
    const inB = store.listPage(key, { namespace: 'b', after: 'b/x', limit: 1 });
    assert.deepEqual(names(inB.items), ['b/y']);
    assert.equal(inB.remaining, 1);
    assert.deepEqual(store.listPage(key, { namespace: 'none' }).items, []);
  });

  test('creates and deletes between reads, also of the same key, keep the order exact', () => {
    const store = new ObjectStore();
    for (const name of ['m', 'c', 'x']) store.put(key, configMap('ns', name));
    assert.deepEqual(names(store.list(key)), ['ns/c', 'ns/m', 'ns/x']);
    store.put(key, configMap('ns', 'a'));
    store.remove(key, 'ns', 'm');
    store.put(key, configMap('ns', 'm'));
    store.remove(key, 'ns', 'x');
    store.put(key, configMap('ns', 'q'));
    store.remove(key, 'ns', 'q');
    store.put(key, configMap('ns', 'z'));
    assert.deepEqual(names(store.list(key)), ['ns/a', 'ns/c', 'ns/m', 'ns/z']);
    store.remove(key, 'ns', 'a');
    assert.deepEqual(names(store.list(key)), ['ns/c', 'ns/m', 'ns/z']);
  });

  test('the filter skips objects and decides whether more follow; no count is given with a filter', () => {
    const store = new ObjectStore();
    for (const name of ['a', 'b', 'c', 'd'])
      store.put(key, configMap('ns', name, { keep: String(name !== 'd') }));
    const kept = (object: JsonObject) => (object.data as { keep: string }).keep === 'true';
    const page = store.listPage(key, { limit: 3, filter: kept });
    assert.deepEqual(names(page.items), ['ns/a', 'ns/b', 'ns/c']);
    assert.equal(page.more, false, 'the only object left is filtered out');
    assert.equal(store.listPage(key, { limit: 2, filter: kept }).remaining, undefined);
  });

  test('atRevision shows each object as it was then: changed ones before the change, new ones absent, deleted ones present', () => {
    const store = new ObjectStore();
    for (const name of ['a', 'b', 'c', 'd']) store.put(key, configMap('ns', name, { v: '1' }));
    const revision = store.currentRevision();
    store.put(key, configMap('ns', 'b', { v: '2' }));
    store.put(key, configMap('ns', 'b', { v: '3' }));
    store.remove(key, 'ns', 'c');
    store.put(key, configMap('ns', 'bb', { v: '1' }));
    store.put(key, configMap('ns', 'e', { v: '1' }));
    const then = store.listPage(key, { atRevision: revision });
    assert.deepEqual(names(then.items), ['ns/a', 'ns/b', 'ns/c', 'ns/d']);
    assert.deepEqual(
      then.items.map((object) => (object.data as { v: string }).v),
      ['1', '1', '1', '1'],
    );
    const rest = store.listPage(key, { atRevision: revision, after: 'ns/a', limit: 1 });
    assert.deepEqual(names(rest.items), ['ns/b']);
    assert.equal(rest.remaining, 2, 'c (deleted since) and d; not bb or e (created since)');
    assert.deepEqual(names(store.list(key)), ['ns/a', 'ns/b', 'ns/bb', 'ns/d', 'ns/e']);
  });
});

describe('paginated lists over HTTPS', () => {
  let server: ApiServer;
  const namespace = 'paging';
  const configmaps = '/api/v1/namespaces/paging/configmaps';

  before(async () => {
    server = await startApiServer();
    await call(server, 'POST', '/api/v1/namespaces', { body: { metadata: { name: namespace } } });
  });
  after(() => server.close());

  async function create(name: string, data: Record<string, string>): Promise<void> {
    const res = await call(server, 'POST', configmaps, { body: { metadata: { name }, data } });
    assert.equal(res.status, 201, res.text);
  }

  test('pages return every object exactly once, as it was at the first page, while objects change', async () => {
    for (let n = 0; n < 40; n++) await create(`cm-${String(n).padStart(2, '0')}`, { v: '1' });
    const atStart = await call(server, 'GET', configmaps);
    const expected = new Map(
      (atStart.body.items as JsonObject[]).map((item) => [
        (item.metadata as { name: string }).name,
        (item.metadata as { resourceVersion: string }).resourceVersion,
      ]),
    );
    const seen: [string, string][] = [];
    let token: string | undefined;
    let pages = 0;
    let changes = 0;
    do {
      const query = token === undefined ? 'limit=6' : `limit=6&continue=${encodeURIComponent(token)}`;
      const page = await call(server, 'GET', `${configmaps}?${query}`);
      assert.equal(page.status, 200, page.text);
      for (const item of page.body.items as JsonObject[]) {
        const meta = item.metadata as { name: string; resourceVersion: string };
        seen.push([meta.name, meta.resourceVersion]);
      }
      token = (page.body.metadata as { continue?: string }).continue;
      pages += 1;
      // Writes between pages on both sides of the page boundary: creates, updates and deletes.
      changes += 1;
      await create(`cm-${String(changes).padStart(2, '0')}-new`, { v: 'new' });
      await create(`cm-${changes * 5}x`, { v: 'new' });
      const victim = `cm-${String((changes * 7) % 40).padStart(2, '0')}`;
      if ((await call(server, 'DELETE', `${configmaps}/${victim}`)).status === 404) continue;
      const updated = `cm-${String((changes * 11 + 3) % 40).padStart(2, '0')}`;
      await call(server, 'PATCH', `${configmaps}/${updated}`, {
        body: { data: { v: String(changes) } },
        contentType: 'application/merge-patch+json',
      });
    } while (token !== undefined);
    assert.ok(pages >= 7, `listed in ${pages} pages`);
    assert.equal(new Set(seen.map(([name]) => name)).size, seen.length, 'no object twice');
    assert.deepEqual(new Map(seen), expected);
  });

  test('a page is the same JSON as the objects encoded one by one, and shows an update at once', async () => {
    await create('encoded', { v: 'before' });
    const listed = async () => {
      const res = await call(server, 'GET', `${configmaps}?fieldSelector=metadata.name%3Dencoded`);
      return res;
    };
    const first = await listed();
    const items = first.body.items as JsonObject[];
    assert.equal(items.length, 1);
    assert.equal(first.text, JSON.stringify(first.body), 'the text is the encoding of the parsed list');
    const stored = server.store.get('/configmaps', namespace, 'encoded')!;
    assert.ok(first.text.includes(JSON.stringify(stored)));
    const patched = await call(server, 'PATCH', `${configmaps}/encoded`, {
      body: { data: { v: 'after' } },
      contentType: 'application/merge-patch+json',
    });
    assert.equal(patched.status, 200);
    const second = (await listed()).body.items as JsonObject[];
    assert.deepEqual(second[0]!.data, { v: 'after' });
    assert.notEqual(
      (second[0]!.metadata as { resourceVersion: string }).resourceVersion,
      (items[0]!.metadata as { resourceVersion: string }).resourceVersion,
    );
  });

  test('a list larger than one chunk streams out whole and parses to every object', async () => {
    const registry = server.registry;
    const type = registry.catalog.find('', 'v1', 'configmaps')!;
    await registry.create(
      registry.catalog.find('', 'v1', 'namespaces')!,
      '',
      { metadata: { name: 'bulk' } },
      { dryRun: false, user: SYSTEM_USER },
    );
    const filler = 'x'.repeat(3000);
    for (let n = 0; n < 700; n++) {
      await registry.create(
        type,
        'bulk',
        { metadata: { name: `bulk-${n}` }, data: { filler } },
        { dryRun: false, user: SYSTEM_USER },
      );
    }
    const res = await call(server, 'GET', '/api/v1/namespaces/bulk/configmaps');
    assert.equal(res.status, 200);
    assert.ok(res.text.length > 2 ** 21, `${res.text.length} characters`);
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.equal((res.body.items as unknown[]).length, 700);
    assert.equal(res.body.kind, 'ConfigMapList');
    assert.equal(
      res.text,
      JSON.stringify({
        kind: 'ConfigMapList',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(server.store.currentRevision()) },
        items: server.store.list('/configmaps', 'bulk'),
      }),
    );
  });

  test('remainingItemCount is left out when the list has a selector, as upstream', async () => {
    const plain = await call(server, 'GET', `${configmaps}?limit=2`);
    assert.equal(
      typeof (plain.body.metadata as { remainingItemCount?: number }).remainingItemCount,
      'number',
    );
    const selected = await call(server, 'GET', `${configmaps}?limit=2&labelSelector=!missing`);
    assert.equal(typeof (selected.body.metadata as { continue?: string }).continue, 'string');
    assert.equal((selected.body.metadata as { remainingItemCount?: number }).remainingItemCount, undefined);
  });
});
