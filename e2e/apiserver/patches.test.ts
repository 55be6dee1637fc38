import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { stringify as toYaml } from 'yaml';
import { type ApiServer, startApiServer } from './index.ts';
import { call } from './test-helpers.ts';

let server: ApiServer;

before(async () => {
  server = await startApiServer();
  const res = await call(server, 'POST', '/api/v1/namespaces/default/services', {
    body: {
      metadata: { name: 'web', labels: { app: 'web' } },
      spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    },
  });
  assert.equal(res.status, 201, res.text);
});
after(() => server.close());

const SVC = '/api/v1/namespaces/default/services/web';

async function patch(
  path: string,
  type: string,
  body: unknown,
  query = '',
): Promise<{ status: number; body: Record<string, unknown> }> {
  return call(server, 'PATCH', `${path}${query}`, {
    body: typeof body === 'string' ? body : JSON.stringify(body),
    contentType: type,
  });
}

describe('PATCH', () => {
  test('JSON patch applies its operations; a failed test operation is 422 and changes nothing', async () => {
    const ok = await patch(SVC, 'application/json-patch+json', [
      { op: 'test', path: '/spec/ports/0/port', value: 80 },
      { op: 'replace', path: '/spec/ports/0/targetPort', value: 9090 },
    ]);
    assert.equal(ok.status, 200);
    assert.equal((ok.body.spec as { ports: { targetPort: number }[] }).ports[0]!.targetPort, 9090);
    const before = (await call(server, 'GET', SVC)).body;
    const failed = await patch(SVC, 'application/json-patch+json', [
      { op: 'replace', path: '/spec/selector/app', value: 'x' },
      { op: 'test', path: '/spec/ports/0/port', value: 81 },
    ]);
    assert.equal(failed.status, 422);
    assert.match(String(failed.body.message), /testing value 81 failed/);
    assert.deepEqual((await call(server, 'GET', SVC)).body, before);
  });

  test('merge patch replaces lists and deletes keys set to null', async () => {
    const res = await patch(SVC, 'application/merge-patch+json', {
      metadata: { labels: { app: null, tier: 'front' } },
    });
    assert.deepEqual((res.body.metadata as { labels: unknown }).labels, { tier: 'front' });
  });

  test('strategic merge patch merges Service ports by port and deletes with $patch: delete', async () => {
    const added = await patch(SVC, 'application/strategic-merge-patch+json', {
      spec: { ports: [{ name: 'https', port: 443 }] },
    });
    assert.deepEqual(
      (added.body.spec as { ports: { port: number }[] }).ports.map((p) => p.port),
      [80, 443],
    );
    const removed = await patch(SVC, 'application/strategic-merge-patch+json', {
      spec: { ports: [{ port: 80, $patch: 'delete' }] },
    });
    assert.deepEqual(
      (removed.body.spec as { ports: { port: number; targetPort: number }[] }).ports.map((p) => [
        p.port,
        p.targetPort,
      ]),
      [[443, 443]],
    );
  });

  test('a patch with an unknown content type is 415; a patch changing the name is 400', async () => {
    assert.equal((await patch(SVC, 'text/plain', 'x')).status, 415);
    assert.equal(
      (await patch(SVC, 'application/merge-patch+json', { metadata: { name: 'other' } })).status,
      400,
    );
  });

  test('a patch on a missing object is 404', async () => {
    assert.equal(
      (await patch('/api/v1/namespaces/default/services/missing', 'application/merge-patch+json', {})).status,
      404,
    );
  });
});

describe('server-side apply', () => {
  const CM = '/api/v1/namespaces/default/configmaps/applied';
  const manifest = (data: Record<string, string>, labels: Record<string, string> = { app: 'a' }) =>
    toYaml({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied', labels }, data });

  test('apply creates the object, records the manager and is idempotent', async () => {
    const created = await patch(
      CM,
      'application/apply-patch+yaml',
      manifest({ a: '1', b: '2' }),
      '?fieldManager=alice',
    );
    assert.equal(created.status, 201);
    const managed = (created.body.metadata as { managedFields: { manager: string; operation: string }[] })
      .managedFields;
    assert.deepEqual(
      managed.map((m) => [m.manager, m.operation]),
      [['alice', 'Apply']],
    );
    const again = await patch(
      CM,
      'application/apply-patch+yaml',
      manifest({ a: '1', b: '2' }),
      '?fieldManager=alice',
    );
    assert.equal(again.status, 200);
    assert.equal(
      (again.body.metadata as { resourceVersion: string }).resourceVersion,
      (created.body.metadata as { resourceVersion: string }).resourceVersion,
    );
  });

  test('removing a field from the applied manifest removes it; fields written by others stay', async () => {
    await patch(CM, 'application/merge-patch+json', { metadata: { annotations: { other: 'kept' } } });
    const res = await patch(
      CM,
      'application/apply-patch+yaml',
      manifest({ a: '1' }, {}),
      '?fieldManager=alice',
    );
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.data, { a: '1' });
    assert.deepEqual((res.body.metadata as { labels?: unknown }).labels ?? {}, {});
    assert.deepEqual((res.body.metadata as { annotations: unknown }).annotations, { other: 'kept' });
  });

  test('a field owned by another apply manager with a different value is a 409 conflict unless forced', async () => {
    const conflict = await patch(
      CM,
      'application/apply-patch+yaml',
      manifest({ a: '2' }, {}),
      '?fieldManager=bob',
    );
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.message, 'Apply failed with 1 conflict: conflict with "alice": .data.a');
    const shared = await patch(
      CM,
      'application/apply-patch+yaml',
      manifest({ a: '1' }, {}),
      '?fieldManager=bob',
    );
    assert.equal(shared.status, 200, 'the same value is shared ownership, not a conflict');
    const forced = await patch(
      CM,
      'application/apply-patch+yaml',
      manifest({ a: '3' }, {}),
      '?fieldManager=bob&force=true',
    );
    assert.equal(forced.status, 200);
    assert.deepEqual(forced.body.data, { a: '3' });
    const aliceDrops = await patch(
      CM,
      'application/apply-patch+yaml',
      toYaml({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'applied' } }),
      '?fieldManager=alice',
    );
    assert.deepEqual(aliceDrops.body.data, { a: '3' }, 'bob still owns data.a');
  });

  test('apply merges list entries by their merge key', async () => {
    const svc = (ports: { name: string; port: number }[]) =>
      toYaml({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports } });
    const res = await patch(
      SVC,
      'application/apply-patch+yaml',
      svc([
        { name: 'https', port: 443 },
        { name: 'metrics', port: 9100 },
      ]),
      '?fieldManager=ops',
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(
      (res.body.spec as { ports: { port: number }[] }).ports.map((p) => p.port),
      [443, 9100],
    );
    const dropped = await patch(
      SVC,
      'application/apply-patch+yaml',
      svc([{ name: 'https', port: 443 }]),
      '?fieldManager=ops',
    );
    assert.equal(dropped.status, 200, JSON.stringify(dropped.body));
    assert.deepEqual(
      (dropped.body.spec as { ports: { port: number }[] }).ports.map((p) => p.port),
      [443],
    );
  });

  test('apply to /status owns status separately from the main resource', async () => {
    const lb = (spec: Record<string, unknown>) =>
      toYaml({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'lb' },
        spec: { type: 'LoadBalancer', ports: [{ port: 80 }], ...spec },
      });
    const status = (ips: string[]) =>
      toYaml({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'lb' },
        status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } },
      });
    const LB = '/api/v1/namespaces/default/services/lb';
    assert.equal(
      (
        await patch(
          `${LB}/status`,
          'application/apply-patch+yaml',
          status(['198.18.0.1']),
          '?fieldManager=lb',
        )
      ).status,
      404,
    );
    assert.equal((await patch(LB, 'application/apply-patch+yaml', lb({}), '?fieldManager=lb')).status, 201);
    const withStatus = await patch(
      `${LB}/status`,
      'application/apply-patch+yaml',
      status(['198.18.0.1', '198.18.0.2']),
      '?fieldManager=lb',
    );
    assert.equal(withStatus.status, 200, JSON.stringify(withStatus.body));
    const entries = (
      withStatus.body.metadata as { managedFields: { manager: string; subresource?: string }[] }
    ).managedFields;
    assert.deepEqual(
      entries.map((e) => [e.manager, e.subresource ?? '']),
      [
        ['lb', ''],
        ['lb', 'status'],
      ],
    );
    const respec = await patch(
      LB,
      'application/apply-patch+yaml',
      lb({ externalTrafficPolicy: 'Local' }),
      '?fieldManager=lb',
    );
    assert.deepEqual(respec.body.status, {
      loadBalancer: { ingress: [{ ip: '198.18.0.1' }, { ip: '198.18.0.2' }] },
    });
    const cleared = await patch(
      `${LB}/status`,
      'application/apply-patch+yaml',
      toYaml({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'lb' }, status: {} }),
      '?fieldManager=lb',
    );
    assert.deepEqual(cleared.body.status, { loadBalancer: {} });
    assert.equal((cleared.body.spec as { externalTrafficPolicy: string }).externalTrafficPolicy, 'Local');
  });

  test('apply without fieldManager is 400', async () => {
    assert.equal((await patch(CM, 'application/apply-patch+yaml', manifest({}))).status, 400);
  });
});
