import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stringify } from 'yaml';
import { OPENAPI_V2_PROTOBUF } from './openapi-v2.ts';
import { call, kubectlSession } from './test-helpers.ts';

function list(suffix: string, extraServiceField: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `settings-${suffix}` }, data: { a: 'b' } },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `web-${suffix}` },
        spec: { selector: { app: 'web' }, ports: [{ port: 80 }], ...extraServiceField },
      },
    ],
  });
}

describe('kind: List manifests through kubectl', () => {
  const session = kubectlSession();
  const { kubectl } = session;

  test('/openapi/v2 answers kubectl’s protobuf request with a document that has no definitions', async () => {
    const res = await call(session.server, 'GET', '/openapi/v2', { accept: OPENAPI_V2_PROTOBUF });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf');
    // swagger (field 1) = "2.0", then info (field 2) holding title (1) and version (2).
    assert.deepEqual(
      [...Buffer.from(res.text, 'latin1').subarray(0, 7)],
      [0x0a, 3, 0x32, 0x2e, 0x30, 0x12, 2 + 'Kubernetes'.length + 2 + 'v1.32.0'.length],
    );
    const json = await call(session.server, 'GET', '/openapi/v2');
    assert.equal(json.body.swagger, '2.0');
  });

  test('kubectl create -f of a List creates every item', async () => {
    const result = await kubectl(['create', '-f', '-'], list('created'));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'configmap/settings-created created\nservice/web-created created\n');
    assert.ok(session.server.store.get('/configmaps', 'default', 'settings-created'));
    assert.ok(session.server.store.get('/services', 'default', 'web-created'));
  });

  test('kubectl apply -f of a List is idempotent', async () => {
    const first = await kubectl(['apply', '-f', '-'], list('applied'));
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, 'configmap/settings-applied created\nservice/web-applied created\n');
    const again = await kubectl(['apply', '-f', '-'], list('applied'));
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'configmap/settings-applied unchanged\nservice/web-applied unchanged\n');
  });

  test('an unknown field in a List item is still a strict decoding error from the server', async () => {
    const result = await kubectl(['create', '-f', '-'], list('strict', { bogus: true }));
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /Error from server \(BadRequest\): error when creating "STDIN": Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec\.bogus"/,
    );
    assert.equal(session.server.store.get('/services', 'default', 'web-strict'), undefined);
  });
});
