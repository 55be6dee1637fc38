/**
 * Selector-less Services with hand-written Endpoints (examples/selectorless-service, seed 003): the
 * mirroring controller copies the Endpoints into an EndpointSlice labelled as managed by it, and the
 * ClusterIP forwards to the hand-named backend.
 *
 * The example's backend, 192.0.2.42 (TEST-NET-1), is applied unchanged and only its mirrored slice
 * is checked; no traffic may go there. The traffic half applies a variant whose Endpoints name a
 * pod of the scenario.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { MANAGED_BY_ENDPOINTSLICE_MIRRORING_CONTROLLER } from '../../api/labels.ts';
import type { Scenario } from './driver.ts';
import {
  eventually,
  hostsAnsweringInCluster,
  manifestList,
  podAddresses,
  serviceObject,
  sliceEndpoints,
  webPod,
} from './service-checks.ts';

const example = new URL('../../examples/selectorless-service/', import.meta.url);
const BACKEND_POD = 'selectorless-backend';
const SERVICE = 'selectorless-web';

interface Manifest {
  kind: string;
  metadata: { name: string };
}

/** The example's Service and Endpoints, as written (the API server defaults the ports' protocol). */
async function exampleManifests(): Promise<{ objects: string; service: string }> {
  const documents: Manifest[] = [];
  for (const file of ['service.yaml', 'endpoints.yaml']) {
    const text = await readFile(new URL(file, example), 'utf8');
    for (const document of parseAllDocuments(text)) documents.push(document.toJS() as Manifest);
  }
  const service = documents.find((document) => document.kind === 'Service');
  assert.ok(service !== undefined, `a Service in ${example.pathname}`);
  return { objects: manifestList(documents), service: service.metadata.name };
}

function backendPod(): string {
  return manifestList([webPod(BACKEND_POD, BACKEND_POD)]);
}

/** A selector-less Service and the Endpoints naming the backend pod by IP, as a user writes them. */
function variantManifests(backendIp: string): string {
  return manifestList([
    serviceObject(SERVICE, { ports: [{ name: 'http', protocol: 'TCP', port: 8080, targetPort: 80 }] }),
    {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: SERVICE },
      subsets: [{ addresses: [{ ip: backendIp }], ports: [{ name: 'http', protocol: 'TCP', port: 80 }] }],
    },
  ]);
}

/** The selector-less Service scenario; see the module comment. */
export const selectorlessServiceScenario: Scenario = {
  name: 'selector-less Service: Endpoints mirrored into a slice, ClusterIP reaches the named pod',
  async run(driver) {
    const { objects: exampleObjects, service: exampleService } = await exampleManifests();
    const pod = backendPod();
    let variant: string | undefined;
    await driver.ensureClient();
    try {
      await driver.apply(exampleObjects);
      await eventually(`the mirrored EndpointSlice of ${exampleService}`, async () => {
        const endpoints = await sliceEndpoints(driver, exampleService);
        return endpoints.length === 1 ? true : undefined;
      });
      const [mirrored] = await sliceEndpoints(driver, exampleService);
      assert.deepEqual(
        { address: mirrored?.address, managedBy: mirrored?.managedBy, ports: mirrored?.ports },
        {
          address: '192.0.2.42',
          managedBy: MANAGED_BY_ENDPOINTSLICE_MIRRORING_CONTROLLER,
          ports: ['=9376/TCP'],
        },
      );

      await driver.apply(pod);
      await driver.waitFor(`pod/${BACKEND_POD}`, 'condition=Ready');
      const [backend] = await podAddresses(driver, BACKEND_POD);
      assert.ok(backend !== undefined, `pod ${BACKEND_POD} has an IP`);
      variant = variantManifests(backend.ip);
      await driver.apply(variant);
      const clusterIp = await driver.read(`service/${SERVICE}`, '{.spec.clusterIP}');
      assert.notEqual(clusterIp, '', `service/${SERVICE} got a ClusterIP`);
      await eventually(`the mirrored EndpointSlice of ${SERVICE}`, async () => {
        const endpoints = await sliceEndpoints(driver, SERVICE);
        return endpoints.length === 1 ? true : undefined;
      });
      const [mirroredVariant] = await sliceEndpoints(driver, SERVICE);
      assert.deepEqual(
        {
          address: mirroredVariant?.address,
          managedBy: mirroredVariant?.managedBy,
          ports: mirroredVariant?.ports,
        },
        {
          address: backend.ip,
          managedBy: MANAGED_BY_ENDPOINTSLICE_MIRRORING_CONTROLLER,
          ports: ['http=80/TCP'],
        },
      );

      const url = `http://${clusterIp}:8080/`;
      // The first requests may beat the agents' sync; after that every request must reach the pod.
      await eventually(`${url} to answer`, async () => {
        const body = await driver.execInClient(['curl', '-sS', '-m', '2', url]).catch(() => undefined);
        return body === undefined ? undefined : true;
      });
      const hosts = await hostsAnsweringInCluster(driver, url, 5);
      assert.deepEqual(new Set(hosts), new Set([BACKEND_POD]));
    } finally {
      if (variant !== undefined) await driver.delete(variant);
      await driver.delete(pod);
      await driver.delete(exampleObjects);
    }
  },
};
