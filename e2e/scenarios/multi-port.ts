/**
 * Multi-port Service with named target ports (a variant of examples/multi-port-service, seed 003):
 * two pods name the same container ports `web` and `admin` but put them on different numbers, so
 * each named targetPort must resolve per pod. The EndpointSlices carry each pod's own numbers, and
 * both Service ports reach both pods; a target port resolved with another pod's number would be
 * refused.
 */
import assert from 'node:assert/strict';
import type { Scenario } from './driver.ts';
import {
  eventually,
  hostsAnsweringInCluster,
  manifestList,
  podAddresses,
  serviceObject,
  sliceEndpoints,
} from './service-checks.ts';

const SERVICE = 'multi-port-web';

/** Each pod's container port numbers; the names are the same in both. */
const PODS: readonly { name: string; web: number; admin: number }[] = [
  { name: 'multi-port-web-a', web: 9376, admin: 9377 },
  { name: 'multi-port-web-b', web: 8376, admin: 8377 },
];

/** A container serving the seeds' demo body on one named port (python:3.7 as in the seeds). */
function portServer(container: string, portName: string, port: number): Record<string, unknown> {
  return {
    name: container,
    image: 'python:3.7',
    imagePullPolicy: 'IfNotPresent',
    command: ['sh', '-c'],
    args: [
      `mkdir -p /srv/${port} && cd /srv/${port} && echo "<p>The host is $(hostname)</p>" > index.html && exec python -m http.server ${port}`,
    ],
    ports: [{ name: portName, containerPort: port }],
    readinessProbe: { tcpSocket: { port }, periodSeconds: 1 },
  };
}

function manifests(): string {
  return manifestList([
    serviceObject(SERVICE, {
      selector: { app: SERVICE },
      ports: [
        { name: 'http', protocol: 'TCP', port: 80, targetPort: 'web' },
        { name: 'admin', protocol: 'TCP', port: 8080, targetPort: 'admin' },
      ],
    }),
    ...PODS.map((pod) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: pod.name, labels: { app: SERVICE } },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [portServer('web', 'web', pod.web), portServer('admin', 'admin', pod.admin)],
      },
    })),
  ]);
}

/** The multi-port scenario; see the module comment. */
export const multiPortServiceScenario: Scenario = {
  name: 'multi-port Service: named target ports resolve per pod, both ports reach both pods',
  async run(driver) {
    const objects = manifests();
    await driver.ensureClient();
    await driver.apply(objects);
    try {
      for (const pod of PODS) await driver.waitFor(`pod/${pod.name}`, 'condition=Ready');
      const addresses = await podAddresses(driver, SERVICE);
      const expected = PODS.map((pod) => {
        const ip = addresses.find((address) => address.name === pod.name)?.ip ?? `(no IP for ${pod.name})`;
        return `${ip} ${[`admin=${pod.admin}/TCP`, `http=${pod.web}/TCP`].join(',')}`;
      }).sort();
      await eventually(`the EndpointSlices of ${SERVICE} to list ${expected.join('; ')}`, async () => {
        const listed = (await sliceEndpoints(driver, SERVICE))
          .filter((endpoint) => endpoint.ready === 'true')
          .map((endpoint) => `${endpoint.address} ${endpoint.ports.join(',')}`)
          .sort();
        return listed.join('; ') === expected.join('; ') ? true : undefined;
      });

      const clusterIp = await driver.read(`service/${SERVICE}`, '{.spec.clusterIP}');
      const podNames = PODS.map((pod) => pod.name).sort();
      for (const port of [80, 8080]) {
        const url = `http://${clusterIp}:${port}/`;
        // The agents program the Service shortly after its slices appear; wait until both pods answer.
        await eventually(`both pods behind ${url}`, async () => {
          const seen = new Set(await hostsAnsweringInCluster(driver, url, 4).catch(() => []));
          return seen.size === podNames.length ? true : undefined;
        });
        // From here on every request must succeed, and 20 requests reach both pods.
        const hosts = await hostsAnsweringInCluster(driver, url, 20);
        assert.deepEqual([...new Set(hosts)].sort(), podNames, `pods answering ${url}`);
      }
    } finally {
      await driver.delete(objects);
    }
  },
};
