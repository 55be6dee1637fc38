/**
 * The Service webhooks registered in the local API server (MutatingWebhookConfiguration and
 * ValidatingWebhookConfiguration with url + caBundle), driven with the real kubectl.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, type KubeConfig, type V1Service } from '@kubernetes/client-node';
import { allocationConfigMapName } from '../../api/allocation.ts';
import type { Informer } from '../../controllers/runtime/informer.ts';
import { kubeJsonClient } from '../../controllers/runtime/kube.ts';
import {
  kubeConfigFor,
  startTestApiServer,
  testLogger,
  waitFor,
} from '../../controllers/runtime/testing/harness.ts';
import type { ApiServer } from '../../e2e/apiserver/index.ts';
import type { WebhookServer } from '../server.ts';
import {
  type KubectlResult,
  kubectlWith,
  loopbackServingCertificate,
  registerLoopbackWebhooks,
} from '../testing/apiserver.ts';
import {
  indexedServicesInformer,
  loopbackWebhookServer,
  testServiceAllocators,
} from '../testing/services.ts';

const namespace = 'portico-system';
const examples = new URL('../../examples/', import.meta.url).pathname;

let apiServer: ApiServer;
let kubeConfig: KubeConfig;
let core: CoreV1Api;
let webhookServer: WebhookServer;
let services: Informer<V1Service>;
let directory: string;

function kubectl(...args: string[]): Promise<KubectlResult> {
  return kubectlWith(apiServer.kubeconfigPath, args);
}

async function applyManifest(name: string, manifest: string, ...flags: string[]) {
  const file = join(directory, `${name}.yaml`);
  await writeFile(file, manifest);
  return kubectl('apply', '-f', file, ...flags);
}

async function configMapVersion(kind: 'IPv4' | 'NodePort'): Promise<string | undefined> {
  const map = await core.readNamespacedConfigMap({ namespace, name: allocationConfigMapName(kind) });
  return map.metadata?.resourceVersion;
}

before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'portico-webhook-e2e-'));
  apiServer = await startTestApiServer();
  kubeConfig = kubeConfigFor(apiServer.kubeconfigPath);
  core = kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const { ca, certFile, keyFile } = await loopbackServingCertificate(directory, 'portico-webhook-test-ca');
  const logger = testLogger();
  const allocators = testServiceAllocators(kubeJsonClient(kubeConfig), namespace);
  services = indexedServicesInformer(kubeConfig, logger);
  services.start();
  await services.waitForSync();
  webhookServer = loopbackWebhookServer({ allocators, services, certFile, keyFile, logger });
  await webhookServer.start();
  await registerLoopbackWebhooks(kubeConfig, webhookServer.address().port, ca.caPem);
});

after(async () => {
  await services?.stop();
  await webhookServer?.stop();
  await apiServer?.close();
  if (directory) await rm(directory, { recursive: true, force: true });
});

describe('Service webhooks in the local API server, with kubectl', () => {
  test('kubectl apply of the seed ClusterIP example gets a ClusterIP in 198.19.0.0/16', async () => {
    const applied = await kubectl('apply', '-f', join(examples, 'clusterip-demo/service.yaml'));
    assert.equal(applied.code, 0, applied.stderr);
    const { stdout } = await kubectl('get', 'service', '-o', 'json', '-l', 'app.kubernetes.io/name!=none');
    const list = JSON.parse(stdout) as { items: V1Service[] };
    assert.ok(list.items.length > 0);
    for (const service of list.items) {
      assert.match(service.spec!.clusterIP!, /^198\.19\.\d+\.\d+$/, service.metadata?.name);
      assert.deepEqual(service.spec!.clusterIPs, [service.spec!.clusterIP]);
      assert.equal(service.spec!.ipFamilyPolicy, 'SingleStack');
    }
  });

  test('the seed NodePort example keeps nodePort 30080', async () => {
    const applied = await kubectl('apply', '-f', join(examples, 'nodeport-demo/service.yaml'));
    assert.equal(applied.code, 0, applied.stderr);
    const { stdout } = await kubectl(
      'get',
      'service',
      'demo',
      '-o',
      'jsonpath={.spec.ports[0].nodePort} {.spec.clusterIP}',
    );
    const [nodePort, clusterIP] = stdout.split(' ');
    assert.equal(nodePort, '30080');
    assert.match(clusterIP!, /^198\.19\./);
  });

  test('a second Service asking for 30080 is denied with Kubernetes message', async () => {
    const result = await applyManifest(
      'second',
      `apiVersion: v1
kind: Service
metadata: {name: second}
spec:
  type: NodePort
  selector: {app: second}
  ports: [{port: 80, nodePort: 30080}]
`,
    );
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      /Service "second" is invalid: spec\.ports\[0\]\.nodePort: Invalid value: 30080: provided port is already allocated/,
    );
  });

  test('nodePort 29999 is denied with the valid range in the message', async () => {
    const result = await applyManifest(
      'low',
      `apiVersion: v1
kind: Service
metadata: {name: low}
spec:
  type: NodePort
  selector: {app: low}
  ports: [{port: 80, nodePort: 29999}]
`,
    );
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      /spec\.ports\[0\]\.nodePort: Invalid value: 29999: provided port is not in the valid range\. The range of valid ports is 30000-32767/,
    );
  });

  test('a Service with two unnamed ports is denied', async () => {
    const result = await applyManifest(
      'unnamed',
      `apiVersion: v1
kind: Service
metadata: {name: unnamed}
spec:
  selector: {app: unnamed}
  ports: [{port: 80}, {port: 443}]
`,
    );
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /spec\.ports\[0\]\.name: Required value/);
  });

  test('a dry run allocates nothing: the ConfigMaps keep their resourceVersion', async () => {
    const ipVersion = await configMapVersion('IPv4');
    const portVersion = await configMapVersion('NodePort');
    const result = await applyManifest(
      'dry',
      `apiVersion: v1
kind: Service
metadata: {name: dry}
spec:
  type: NodePort
  selector: {app: dry}
  ports: [{port: 80}]
`,
      '--dry-run=server',
      '-o',
      'jsonpath={.spec.clusterIP}',
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^198\.19\./, 'a dry run still shows a plausible address');
    assert.equal(await configMapVersion('IPv4'), ipVersion);
    assert.equal(await configMapVersion('NodePort'), portVersion);
    assert.equal((await kubectl('get', 'service', 'dry')).code, 1, 'nothing was stored');
  });

  test('changing the type to ClusterIP with kubectl patch clears the node port', async () => {
    const result = await kubectl(
      'patch',
      'service',
      'demo',
      '--type=merge',
      '-p',
      '{"spec":{"type":"ClusterIP","externalTrafficPolicy":null}}',
      '-o',
      'json',
    );
    assert.equal(result.code, 0, result.stderr);
    const service = JSON.parse(result.stdout) as V1Service;
    assert.equal(service.spec!.type, 'ClusterIP');
    assert.equal(service.spec!.ports![0]!.nodePort, undefined);
  });

  test('an Endpoints address that is a ClusterIP is denied, naming the Service', async () => {
    await waitFor(() => services.get('default/demo') !== undefined, 'the demo Service in the cache');
    const clusterIP = services.get('default/demo')!.spec!.clusterIP!;
    const result = await applyManifest(
      'endpoints',
      `apiVersion: v1
kind: Endpoints
metadata: {name: loop}
subsets:
- addresses: [{ip: ${clusterIP}}]
  ports: [{port: 80}]
`,
    );
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /may not be the ClusterIP of Service "default\/demo"/);
  });
});
