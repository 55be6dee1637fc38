/**
 * The LoadBalancerIPPool webhook registered in the local API server through
 * `webhookConfigurations` (as the local cluster registers it), fed by a pools informer as the
 * controller-manager feeds it, and driven with the real kubectl.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiextensionsV1Api, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import {
  LOAD_BALANCER_IP_POOL_CRD,
  LOAD_BALANCER_IP_POOL_PLURAL,
  LOAD_BALANCER_IP_POOL_VERSION,
  type LoadBalancerIPPool,
  PORTICO_GROUP,
} from '../../api/loadbalancerippool.ts';
import { Informer } from '../../controllers/runtime/informer.ts';
import { kubeConfigFor, startTestApiServer, testLogger } from '../../controllers/runtime/testing/harness.ts';
import type { ApiServer } from '../../e2e/apiserver/index.ts';
import { poolRoutes } from '../routes.ts';
import { WebhookServer } from '../server.ts';
import {
  type KubectlResult,
  kubectlWith,
  loopbackServingCertificate,
  registerLoopbackWebhooks,
} from '../testing/apiserver.ts';

let apiServer: ApiServer;
let webhookServer: WebhookServer;
let pools: Informer<LoadBalancerIPPool>;
let directory: string;

function kubectl(...args: string[]): Promise<KubectlResult> {
  return kubectlWith(apiServer.kubeconfigPath, args);
}

async function applyPool(name: string, addresses: readonly string[]) {
  const file = join(directory, `${name}.yaml`);
  const list = addresses.map((address) => `    - ${JSON.stringify(address)}`).join('\n');
  await writeFile(
    file,
    `apiVersion: portico.dev/v1alpha1\nkind: LoadBalancerIPPool\nmetadata:\n  name: ${name}\nspec:\n  addresses:\n${list}\n`,
  );
  return kubectl('apply', '-f', file);
}

before(async () => {
  directory = await mkdtemp(join(tmpdir(), 'portico-pool-webhook-'));
  apiServer = await startTestApiServer();
  const kubeConfig = kubeConfigFor(apiServer.kubeconfigPath);
  const crd = structuredClone(LOAD_BALANCER_IP_POOL_CRD) as unknown as V1CustomResourceDefinition;
  await kubeConfig.makeApiClient(ApiextensionsV1Api).createCustomResourceDefinition({ body: crd });
  await apiServer.controllersIdle();
  const logger = testLogger();
  pools = new Informer<LoadBalancerIPPool>({
    kubeConfig,
    logger,
    path: `/apis/${PORTICO_GROUP}/${LOAD_BALANCER_IP_POOL_VERSION}/${LOAD_BALANCER_IP_POOL_PLURAL}`,
  });
  pools.start();
  await pools.waitForSync();
  const { ca, certFile, keyFile } = await loopbackServingCertificate(
    directory,
    'portico-pool-webhook-test-ca',
  );
  webhookServer = new WebhookServer({
    address: { host: '127.0.0.1', port: 0 },
    certFile,
    keyFile,
    routes: new Map(),
    logger,
  });
  webhookServer.addRoutes(poolRoutes(pools));
  await webhookServer.start();
  // Only the pool webhook: this server serves no Service routes.
  await registerLoopbackWebhooks(kubeConfig, webhookServer.address().port, ca.caPem, [
    'loadbalancerippools.portico.dev',
  ]);
});

after(async () => {
  await pools?.stop();
  await webhookServer?.stop();
  await apiServer?.close();
  if (directory) await rm(directory, { recursive: true, force: true });
});

describe('LoadBalancerIPPool webhook in the local API server, with kubectl', () => {
  // kubectl prints a 422 from its causes: `The LoadBalancerIPPool "x" is invalid: <field>: …`.
  test('kubectl apply of a pool overlapping another is denied with a message naming both', async () => {
    const first = await applyPool('lan', ['198.18.200.0/25']);
    assert.equal(first.code, 0, first.stderr);
    const [name] = (await kubectl('get', 'loadbalancerippools', '-o', 'name')).stdout.trim().split('\n');
    assert.equal(name, 'loadbalancerippool.portico.dev/lan');
    // The webhook reads the informer, which learns of "lan" through its watch.
    const deadline = Date.now() + 5_000;
    while (pools.get('lan') === undefined) {
      assert.ok(Date.now() < deadline, 'the pools informer saw "lan"');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    const denied = await applyPool('second', ['198.18.201.0/24', '198.18.200.100-198.18.200.200']);
    assert.notEqual(denied.code, 0);
    assert.match(
      denied.stderr,
      /^The LoadBalancerIPPool "second" is invalid: spec\.addresses\[1\]: Invalid value: "198\.18\.200\.100-198\.18\.200\.200": overlaps "198\.18\.200\.0\/25" of LoadBalancerIPPool "lan"/,
    );
    const listed = await kubectl('get', 'loadbalancerippools', '-o', 'name');
    assert.doesNotMatch(listed.stdout, /second/);
  });

  test('a bad CIDR and a reversed range are denied at their entries; a clear pool is admitted', async () => {
    const denied = await applyPool('bad', ['10.0.0.0/33', '198.18.202.20-198.18.202.10']);
    assert.notEqual(denied.code, 0);
    assert.match(
      denied.stderr,
      /^\* spec\.addresses\[0\]: Invalid value: "10\.0\.0\.0\/33": the prefix length must be between 0 and 32 for IPv4\n\* spec\.addresses\[1\]: Invalid value: "198\.18\.202\.20-198\.18\.202\.10": the first address of a range must not be after the last$/m,
    );
    const admitted = await applyPool('clear', ['198.18.203.0/24']);
    assert.equal(admitted.code, 0, admitted.stderr);
  });
});
