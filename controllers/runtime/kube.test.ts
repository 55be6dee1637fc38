import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { ApiRequestError, apiStatusCode, describeError, loadKubeConfig } from './kube.ts';

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
