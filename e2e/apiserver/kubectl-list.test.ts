import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { type ApiServer, startApiServer } from './index.ts';
import { OPENAPI_V2_PROTOBUF } from './openapi-v2.ts';
import { call } from './test-helpers.ts';

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
  let server: ApiServer;
  let home = '';
  const kubectl = (
    args: string[],
    stdin: string,
  ): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = execFile(
        '/usr/bin/kubectl',
        args,
        {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, KUBECONFIG: server.kubeconfigPath },
          timeout: 30_000,
          killSignal: 'SIGKILL',
        },
        (error, stdout, stderr) =>
          resolve({
            code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1,
            stdout,
            stderr,
          }),
      );
      child.stdin?.end(stdin);
    });
  before(async () => {
    server = await startApiServer();
    home = mkdtempSync(join(tmpdir(), 'portico-kubectl-'));
  });
  after(async () => {
    await server.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('/openapi/v2 answers kubectl’s protobuf request with a document that has no definitions', async () => {
    const res = await call(server, 'GET', '/openapi/v2', { accept: OPENAPI_V2_PROTOBUF });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf');
    // swagger (field 1) = "2.0", then info (field 2) holding title (1) and version (2).
    assert.deepEqual(
      [...Buffer.from(res.text, 'latin1').subarray(0, 7)],
      [0x0a, 3, 0x32, 0x2e, 0x30, 0x12, 2 + 'Kubernetes'.length + 2 + 'v1.32.0'.length],
    );
    const json = await call(server, 'GET', '/openapi/v2');
    assert.equal(json.body.swagger, '2.0');
  });

  test('kubectl create -f of a List creates every item', async () => {
    const result = await kubectl(['create', '-f', '-'], list('created'));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'configmap/settings-created created\nservice/web-created created\n');
    assert.ok(server.store.get('/configmaps', 'default', 'settings-created'));
    assert.ok(server.store.get('/services', 'default', 'web-created'));
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
    assert.equal(server.store.get('/services', 'default', 'web-strict'), undefined);
  });
});
