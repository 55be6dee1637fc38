import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ApiException,
  type ConfigurationOptions,
  CoreV1Api,
  KubeConfig,
  type ObservableMiddleware,
} from '@kubernetes/client-node';
import { createCertificateAuthority, issueServingCertificate } from '../../webhooks/certificates.ts';
import {
  ApiRequestError,
  apiStatusCode,
  createConnectionReuse,
  describeError,
  getJson,
  KubeJsonClient,
  kubeJsonClient,
  loadKubeConfig,
} from './kube.ts';

async function kubeconfigFile(server: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'portico-kube-test-')), 'config');
  await writeFile(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server } }],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
  return path;
}

describe('loadKubeConfig', () => {
  test('the --kubeconfig path wins over KUBECONFIG', async () => {
    const flag = await kubeconfigFile('https://flag.example:6443');
    const env = await kubeconfigFile('https://env.example:6443');
    const { kubeConfig, source } = loadKubeConfig({ kubeconfigPath: flag, env: { KUBECONFIG: env } });
    assert.equal(source, 'flag');
    assert.equal(kubeConfig.getCurrentCluster()?.server, 'https://flag.example:6443');
  });

  test('KUBECONFIG is used next, its first entry when it lists several', async () => {
    const env = await kubeconfigFile('https://env.example:6443');
    const { kubeConfig, source } = loadKubeConfig({ env: { KUBECONFIG: `${env}:/nonexistent` } });
    assert.equal(source, 'env');
    assert.equal(kubeConfig.getCurrentCluster()?.server, 'https://env.example:6443');
  });

  test('then the in-cluster service account, and a clear error outside a pod', () => {
    const { kubeConfig, source } = loadKubeConfig({
      env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
    });
    assert.equal(source, 'in-cluster');
    assert.equal(kubeConfig.getCurrentCluster()?.server, 'https://10.96.0.1:443');
    assert.throws(
      () => loadKubeConfig({ env: {} }),
      /no kubeconfig: pass --kubeconfig, set KUBECONFIG, or run in a pod/,
    );
  });
});

describe('API error helpers', () => {
  test('status codes are read from typed-client, watch and raw-GET errors', () => {
    assert.equal(apiStatusCode(new ApiException(409, 'Conflict', {}, {})), 409);
    assert.equal(apiStatusCode(Object.assign(new Error('Gone'), { statusCode: 410 })), 410);
    assert.equal(apiStatusCode(new ApiRequestError(429, 'slow down', {})), 429);
    assert.equal(apiStatusCode(new Error('ECONNRESET')), undefined);
    assert.equal(apiStatusCode('text'), undefined);
  });

  test('descriptions keep the first line of the message and the status', () => {
    const status = { kind: 'Status', message: 'leases.coordination.k8s.io "x" not found', code: 404 };
    assert.equal(
      describeError(new ApiException(404, 'Not Found', JSON.stringify(status), {})),
      '404: leases.coordination.k8s.io "x" not found',
    );
    assert.equal(describeError(new ApiException(500, 'boom', {}, {})), '500: HTTP-Code: 500');
    assert.equal(describeError(new Error('socket hang up')), 'socket hang up');
  });
});

/** What the stand-in API server saw of one request. */
interface SeenRequest {
  method: string;
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: string;
}

/**
 * A stand-in API server: `/ok` echoes what it got, `/missing` answers a 404 Status, `/proxy-error/…`
 * a 502 in plain text, `/big` a large body. It counts the connections it accepted.
 */
function standInHandler(seen: SeenRequest[]) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: SeenRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(request);
      const path = new URL(request.url, 'http://x').pathname;
      if (path === '/missing') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            kind: 'Status',
            code: 404,
            reason: 'NotFound',
            message: 'configmaps "x" not found',
          }),
        );
      } else if (path.startsWith('/proxy-error')) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('Bad Gateway');
      } else if (path === '/big') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ data: 'x'.repeat(64 * 1024) }));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(request));
      }
    });
  };
}

function kubeConfigWithToken(
  server: string,
  token: string,
  cluster: Record<string, string> = {},
): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    // client-node refuses plain HTTP unless TLS verification is switched off explicitly.
    clusters: [{ name: 'c', server, skipTLSVerify: server.startsWith('http:'), ...cluster }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kubeConfig;
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return String((server.address() as AddressInfo).port);
}

describe('KubeJsonClient over plain HTTP', () => {
  const seen: SeenRequest[] = [];
  const server = http.createServer(standInHandler(seen));
  let connections = 0;
  server.on('connection', () => {
    connections += 1;
  });
  let url = '';
  before(async () => {
    url = `http://127.0.0.1:${await listen(server)}`;
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('requests one after another share one kept-alive connection', async () => {
    const client = new KubeJsonClient(kubeConfigWithToken(url, 't'));
    const before = connections;
    await client.get('/ok');
    await client.request('PUT', '/ok', { body: { a: 1 } });
    await client.delete('/ok', 'x');
    assert.equal(connections - before, 1);
    client.close();
    await client.get('/ok');
    assert.equal(connections - before, 2, 'a closed pool opens a new connection on the next request');
    client.close();
  });

  test('every user of one KubeConfig gets the same client, and getJson goes through it', async () => {
    const kubeConfig = kubeConfigWithToken(url, 't');
    assert.equal(kubeJsonClient(kubeConfig), kubeJsonClient(kubeConfig));
    assert.notEqual(kubeJsonClient(kubeConfig), kubeJsonClient(kubeConfigWithToken(url, 't')));
    const before = connections;
    await getJson(kubeConfig, '/ok', { labelSelector: 'app=web', fieldSelector: undefined });
    await kubeJsonClient(kubeConfig).create('/ok', { kind: 'ConfigMap' });
    assert.equal(connections - before, 1);
    const [list, create] = seen.slice(-2);
    assert.equal(list?.url, '/ok?labelSelector=app%3Dweb');
    assert.deepEqual(
      { method: create?.method, contentType: create?.contentType, body: create?.body },
      { method: 'POST', contentType: 'application/json', body: '{"kind":"ConfigMap"}' },
    );
    kubeJsonClient(kubeConfig).close();
  });

  test('credentials are read from the kubeconfig for every request, so a rotated token is used at once', async () => {
    const kubeConfig = kubeConfigWithToken(url, 'first');
    const client = new KubeJsonClient(kubeConfig);
    await client.get('/ok');
    kubeConfig.loadFromOptions({
      clusters: kubeConfig.clusters,
      users: [{ name: 'u', token: 'rotated' }],
      contexts: kubeConfig.contexts,
      currentContext: 'x',
    });
    const answer = (await client.request('PATCH', '/ok', {
      body: { metadata: {} },
      contentType: 'application/merge-patch+json',
    })) as SeenRequest;
    assert.deepEqual(
      seen.slice(-2).map((request) => request.authorization),
      ['Bearer first', 'Bearer rotated'],
    );
    assert.equal(answer.contentType, 'application/merge-patch+json');
    client.close();
  });

  test('a non-2xx answer is an ApiRequestError with the status and the Status message', async () => {
    const client = new KubeJsonClient(kubeConfigWithToken(url, 't'));
    await assert.rejects(client.get('/missing'), (error: unknown) => {
      assert.ok(error instanceof ApiRequestError);
      assert.equal(error.statusCode, 404);
      assert.equal(error.message, 'GET /missing: 404 configmaps "x" not found');
      assert.equal(error.serverMessage, 'configmaps "x" not found');
      assert.deepEqual(error.body, {
        kind: 'Status',
        code: 404,
        reason: 'NotFound',
        message: 'configmaps "x" not found',
      });
      assert.equal(describeError(error), '404: configmaps "x" not found');
      return true;
    });
    await assert.rejects(client.delete('/proxy-error', 'x'), (error: unknown) => {
      assert.ok(error instanceof ApiRequestError);
      assert.equal(error.statusCode, 502);
      assert.equal(error.message, 'DELETE /proxy-error/x: 502 Bad Gateway');
      return true;
    });
    client.close();
  });

  test('an answer larger than maxResponseBytes is refused; without the limit it is read', async () => {
    const client = new KubeJsonClient(kubeConfigWithToken(url, 't'));
    await assert.rejects(
      client.get('/big', { maxResponseBytes: 1024 }),
      /GET \/big: answer larger than 1024 bytes/,
    );
    const big = (await client.get('/big')) as { data: string };
    assert.equal(big.data.length, 64 * 1024);
    client.close();
  });

  test('a server that does not answer in timeoutMs fails the request', async () => {
    const silent = http.createServer(() => undefined);
    const port = await listen(silent);
    try {
      const client = new KubeJsonClient(kubeConfigWithToken(`http://127.0.0.1:${port}`, 't'));
      await assert.rejects(client.get('/ok', { timeoutMs: 100 }), /GET \/ok: no answer in 100 ms/);
      client.close();
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe('KubeJsonClient over HTTPS', () => {
  let directory = '';
  let server: https.Server | undefined;
  let url = '';
  let caData = '';
  let handshakes = 0;
  const seen: SeenRequest[] = [];

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'portico-kube-tls-'));
    const ca = await createCertificateAuthority(directory, 'kube-test-ca');
    // Issued for a name only, not for 127.0.0.1: the request succeeds only when the pooled
    // connections carry the kubeconfig's CA and tls-server-name.
    await issueServingCertificate(
      ca,
      'apiserver',
      ['DNS:apiserver.portico.test'],
      join(directory, 'tls.crt'),
      join(directory, 'tls.key'),
    );
    server = https.createServer(
      {
        cert: await readFile(join(directory, 'tls.crt')),
        key: await readFile(join(directory, 'tls.key')),
      },
      standInHandler(seen),
    );
    server.on('secureConnection', () => {
      handshakes += 1;
    });
    url = `https://127.0.0.1:${await listen(server)}`;
    caData = Buffer.from(ca.caPem).toString('base64');
  });
  after(async () => {
    if (server !== undefined) {
      const closing = server;
      closing.closeAllConnections();
      await new Promise<void>((resolve) => closing.close(() => resolve()));
    }
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  test("the pool verifies with the kubeconfig's CA and server name and keeps one TLS session", async () => {
    const client = new KubeJsonClient(
      kubeConfigWithToken(url, 'tls-token', { caData, tlsServerName: 'apiserver.portico.test' }),
    );
    const before = handshakes;
    await client.get('/ok');
    await client.replace('/ok', 'x', { kind: 'ConfigMap' });
    assert.equal(handshakes - before, 1);
    assert.deepEqual(
      seen.slice(-2).map((request) => `${request.method} ${request.url} ${request.authorization}`),
      ['GET /ok Bearer tls-token', 'PUT /ok/x Bearer tls-token'],
    );
    client.close();
  });

  test('typed-client calls made with createConnectionReuse options share one TLS session; without them each opens one', async () => {
    const kubeConfig = kubeConfigWithToken(url, 't', { caData, tlsServerName: 'apiserver.portico.test' });
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const read = (options?: ConfigurationOptions<ObservableMiddleware>) =>
      core.readNamespacedConfigMap({ namespace: 'default', name: 'x' }, options);
    const reuse = createConnectionReuse()();
    const before = handshakes;
    for (let i = 0; i < 10; i++) await read(reuse);
    // undici frees a connection a moment after the answer resolves, so a call sent at once may
    // find the first one still busy and open a second; the pool never needs more than that.
    const withReuse = handshakes - before;
    assert.ok(withReuse >= 1 && withReuse <= 2, `${withReuse} TLS sessions for 10 calls`);
    for (let i = 0; i < 3; i++) await read();
    assert.equal(handshakes - before - withReuse, 3);
  });

  test('without the CA the server is not trusted', async () => {
    const client = new KubeJsonClient(
      kubeConfigWithToken(url, 't', { tlsServerName: 'apiserver.portico.test' }),
    );
    await assert.rejects(client.get('/ok'), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.match(String((error as { code?: unknown }).code), /SELF_SIGNED|UNABLE_TO|CERT/);
      return true;
    });
    client.close();
  });
});
