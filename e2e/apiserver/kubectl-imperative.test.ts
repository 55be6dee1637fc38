import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type ApiServer, startApiServer } from './index.ts';

const run = promisify(execFile);
let server: ApiServer;

before(async () => {
  server = await startApiServer();
});
after(() => server.close());

function kubectl(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('kubectl', args, { env: { ...process.env, KUBECONFIG: server.kubeconfigPath } });
}

describe('kubectl imperative commands (protobuf request bodies for typed kinds)', () => {
  test('create namespace, configmap, secret and serviceaccount store what kubectl sent', async () => {
    await kubectl('create', 'namespace', 'imperative');
    await kubectl(
      '-n',
      'imperative',
      'create',
      'configmap',
      'cfg',
      '--from-literal=a=b',
      '--from-literal=c=d',
    );
    await kubectl('-n', 'imperative', 'create', 'secret', 'generic', 'sec', '--from-literal=pw=hunter2');
    await kubectl('-n', 'imperative', 'create', 'serviceaccount', 'bot');
    const ns = server.store.get('/namespaces', '', 'imperative');
    assert.equal((ns!.status as { phase: string }).phase, 'Active');
    const cm = server.store.get('/configmaps', 'imperative', 'cfg');
    assert.deepEqual(cm?.data, { a: 'b', c: 'd' });
    assert.deepEqual(Object.keys(cm?.metadata as object).sort(), [
      'creationTimestamp',
      'name',
      'namespace',
      'resourceVersion',
      'uid',
    ]);
    const secret = server.store.get('/secrets', 'imperative', 'sec');
    assert.equal(Buffer.from(String((secret!.data as { pw: string }).pw), 'base64').toString(), 'hunter2');
    assert.equal(secret?.type, 'Opaque');
    assert.ok(server.store.get('/serviceaccounts', 'imperative', 'bot'));
  });

  test('create deployment, run and expose store the fields kubectl set', async () => {
    await kubectl('create', 'deployment', 'web', '--image=nginx:1.27', '--replicas=0', '--port=8080');
    const deployment = server.store.get('apps/deployments', 'default', 'web');
    const spec = deployment!.spec as {
      replicas: number;
      selector: { matchLabels: Record<string, string> };
      template: {
        metadata: { labels: Record<string, string> };
        spec: { containers: { name: string; image: string; ports: unknown[] }[] };
      };
    };
    assert.equal(spec.replicas, 0);
    assert.deepEqual(spec.selector.matchLabels, { app: 'web' });
    assert.deepEqual(spec.template.metadata.labels, { app: 'web' });
    assert.deepEqual(
      spec.template.spec.containers.map((c) => [c.name, c.image, c.ports]),
      [['nginx', 'nginx:1.27', [{ containerPort: 8080, protocol: 'TCP' }]]],
    );
    await kubectl('run', 'shell', '--image=busybox', '--env=A=1', '--labels=role=debug', '--restart=Never');
    const pod = server.store.get('/pods', 'default', 'shell');
    assert.deepEqual((pod!.metadata as { labels: unknown }).labels, { role: 'debug' });
    const podSpec = pod!.spec as { containers: { env: unknown }[]; restartPolicy: string };
    assert.deepEqual(podSpec.containers[0]!.env, [{ name: 'A', value: '1' }]);
    assert.equal(podSpec.restartPolicy, 'Never');
    await kubectl('expose', 'deployment', 'web', '--port=80', '--target-port=8080', '--name=web');
    const svc = server.store.get('/services', 'default', 'web');
    assert.deepEqual((svc!.spec as { ports: unknown }).ports, [
      { port: 80, targetPort: 8080, protocol: 'TCP' },
    ]);
    assert.deepEqual((svc!.spec as { selector: unknown }).selector, { app: 'web' });
  });
});
