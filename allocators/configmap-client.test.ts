import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { ApiRequestError, KubeJsonClient } from '../controllers/runtime/kube.ts';
import { KubeConfigMapClient } from './configmap-client.ts';
import { ConflictError } from './errors.ts';

/**
 * A stand-in API server on 127.0.0.1 with just enough of the ConfigMap endpoints to answer the
 * way kube-apiserver does: 404 for a missing object, 409 AlreadyExists on create of an existing
 * one, 409 Conflict on a stale resourceVersion.
 */
function startServer() {
  const objects = new Map<string, V1ConfigMap>();
  let resourceVersion = 1;
  const status = (res: ServerResponse, code: number, reason: string, message: string): void => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }));
  };
  const ok = (res: ServerResponse, code: number, body: V1ConfigMap): void => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const match = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps(?:\/([^/?]+))?/.exec(req.url ?? '');
    if (match === null)
      return status(res, 404, 'NotFound', 'the server could not find the requested resource');
    const [, namespace, name] = match;
    if (name === 'unavailable') return status(res, 503, 'ServiceUnavailable', 'etcd is down');
    if (req.method === 'GET') {
      const stored = objects.get(`${namespace}/${name}`);
      return stored === undefined
        ? status(res, 404, 'NotFound', `configmaps "${name}" not found`)
        : ok(res, 200, stored);
    }
    const body = JSON.parse(Buffer.concat(chunks).toString()) as V1ConfigMap;
    const key = `${namespace}/${body.metadata?.name}`;
    if (req.method === 'POST') {
      if (objects.has(key))
        return status(res, 409, 'AlreadyExists', `configmaps "${body.metadata?.name}" already exists`);
    } else if (req.method === 'PUT') {
      if (objects.get(key)?.metadata?.resourceVersion !== body.metadata?.resourceVersion) {
        return status(
          res,
          409,
          'Conflict',
          `Operation cannot be fulfilled on configmaps "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        );
      }
    } else {
      return status(res, 405, 'MethodNotAllowed', 'method not allowed');
    }
    const stored = { ...body, metadata: { ...body.metadata, resourceVersion: String(++resourceVersion) } };
    objects.set(key, stored);
    return ok(res, req.method === 'POST' ? 201 : 200, stored);
  };
  return createServer((req, res) => {
    handle(req, res).catch((error: unknown) => status(res, 500, 'InternalError', String(error)));
  });
}

describe('KubeConfigMapClient against an HTTP API server', () => {
  const server = startServer();
  let api: KubeJsonClient;
  let client: KubeConfigMapClient;

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'local', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'test' }],
      contexts: [{ name: 'local', cluster: 'local', user: 'test' }],
      currentContext: 'local',
    });
    api = new KubeJsonClient(config);
    client = new KubeConfigMapClient(api);
  });
  after(() => {
    api.close();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const configMap = (resourceVersion?: string): V1ConfigMap => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      namespace: 'portico-system',
      name: 'portico-nodeport',
      ...(resourceVersion && { resourceVersion }),
    },
    data: { range: '30000-32767' },
  });

  test('404 on read is undefined', async () => {
    assert.equal(await client.get('portico-system', 'portico-nodeport'), undefined);
  });

  test('create, then a second create is a ConflictError', async () => {
    const created = await client.create(configMap());
    assert.ok(created.metadata?.resourceVersion);
    await assert.rejects(client.create(configMap()), (error: unknown) => {
      assert.ok(error instanceof ConflictError);
      assert.match(error.message, /already exists/);
      return true;
    });
  });

  test('replace with the current resourceVersion succeeds, with a stale one is a ConflictError', async () => {
    const current = (await client.get('portico-system', 'portico-nodeport'))!;
    const replaced = await client.replace({ ...current, data: { range: '30000-32767', touched: 'yes' } });
    assert.notEqual(replaced.metadata?.resourceVersion, current.metadata?.resourceVersion);
    await assert.rejects(client.replace(current), (error: unknown) => {
      assert.ok(error instanceof ConflictError);
      assert.match(error.message, /the object has been modified/);
      return true;
    });
  });

  test('replace without a resourceVersion is refused before it is sent', async () => {
    await assert.rejects(client.replace(configMap()), /metadata.resourceVersion is required/);
  });

  test('other errors pass through unchanged', async () => {
    await assert.rejects(client.get('portico-system', 'unavailable'), (error: unknown) => {
      assert.ok(error instanceof ApiRequestError);
      assert.equal(error.statusCode, 503);
      assert.equal(
        error.message,
        'GET /api/v1/namespaces/portico-system/configmaps/unavailable: 503 etcd is down',
      );
      return true;
    });
  });
});
