/**
 * Traffic that enters through a node (seed 003 and issue #7's acceptance): NodePort 30080 on every
 * node from outside, an external IP and a LoadBalancer ingress IP, externalTrafficPolicy Local
 * with its health check node port, and loadBalancerSourceRanges.
 *
 * The ingress IPs here are written into `status.loadBalancer` by the scenario, as a provider that
 * is not Portico would (the Services carry a `loadBalancerClass` no controller handles): the agent
 * programs whatever ingress a Service reports. Nobody announces those addresses on a network, so
 * they are reached from the in-cluster client, whose packets the node's rules catch before routing.
 * The LoadBalancerIPPool path, with addresses reached from outside, is loadbalancer.ts.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import {
  DEMO_BACKENDS,
  DEMO_PORT,
  DEMO_SELECTOR,
  DEMO_TARGET_PORT,
  ensureDemo,
  hostsFromClient,
  hostsFromOutside,
  requestsFromClient,
  waitUntilClientReaches,
  waitUntilOutsideReaches,
} from './demo.ts';
import { SCENARIO_NAMESPACE, type Scenario, type ScenarioDriver } from './driver.ts';
import {
  eventually,
  hostInBody,
  manifestList,
  serviceManifest,
  serviceObject,
  webPod,
} from './service-checks.ts';

/** A class no controller implements, so the scenario owns the Service's status. */
const FOREIGN_LOAD_BALANCER_CLASS = 'example.com/not-a-controller';

/** Ingress and external IPs for these Services: benchmarking addresses no network uses. */
const EXTERNAL_IP = '198.18.253.20';
const INGRESS_IP = '198.18.253.10';
const RANGED_INGRESS_IP = '198.18.253.11';

const nodePortExample = new URL('../../examples/nodeport-demo/service.yaml', import.meta.url);

async function setIngress(driver: ScenarioDriver, service: string, ip: string): Promise<void> {
  await driver.kubectl([
    'patch',
    '-n',
    SCENARIO_NAMESPACE,
    `service/${service}`,
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status: { loadBalancer: { ingress: [{ ip }] } } }),
  ]);
}

/** The NodePort example (seed 003) asks for node port 30080; here it selects the demo's pods. */
export const nodePortScenario: Scenario = {
  name: 'NodePort 30080: every node forwards to the backends from outside',
  async run(driver) {
    await ensureDemo(driver);
    const example = parse(await readFile(nodePortExample, 'utf8')) as {
      spec: { selector: Record<string, string> };
    };
    example.spec.selector = { ...DEMO_SELECTOR };
    const manifest = manifestList([example]);
    await driver.apply(manifest);
    try {
      const nodePort = await driver.read('service/demo', '{.spec.ports[0].nodePort}');
      assert.equal(nodePort, '30080');
      for (const node of await driver.nodes()) {
        const url = `http://${node.address}:30080/`;
        await waitUntilOutsideReaches(driver, url);
        const hosts = await hostsFromOutside(driver, url, 8);
        assert.ok(
          new Set(hosts).size >= 2,
          `${node.name}'s node port spreads over backends: ${hosts.join(' ')}`,
        );
      }
    } finally {
      await driver.delete(manifest);
    }
  },
};

/** spec.externalIPs and status.loadBalancer.ingress reach the same backends as the ClusterIP. */
export const externalAndIngressIpScenario: Scenario = {
  name: 'an external IP and a LoadBalancer ingress IP reach the backends',
  async run(driver) {
    await ensureDemo(driver);
    const manifest = serviceManifest('exposed', {
      type: 'LoadBalancer',
      loadBalancerClass: FOREIGN_LOAD_BALANCER_CLASS,
      selector: DEMO_SELECTOR,
      externalIPs: [EXTERNAL_IP],
      ports: [{ name: 'http', port: DEMO_PORT, targetPort: DEMO_TARGET_PORT }],
    });
    await driver.apply(manifest);
    try {
      await setIngress(driver, 'exposed', INGRESS_IP);
      for (const ip of [EXTERNAL_IP, INGRESS_IP]) {
        const url = `http://${ip}:${DEMO_PORT}/`;
        await waitUntilClientReaches(driver, url);
        const hosts = await hostsFromClient(driver, url, 12);
        assert.ok(new Set(hosts).size >= 2, `${url} spreads over backends: ${hosts.join(' ')}`);
        assert.ok(new Set(hosts).size <= DEMO_BACKENDS);
      }
    } finally {
      await driver.delete(manifest);
    }
  },
};

interface HealthCheckAnswer {
  localEndpoints?: number;
}

/**
 * externalTrafficPolicy Local: only the node running the endpoint answers on the node port, and
 * the health check node port says 200 there and 503 on every other node, as external balancers
 * expect.
 */
export const externalTrafficPolicyLocalScenario: Scenario = {
  name: 'externalTrafficPolicy Local: only the node with the endpoint answers; health check 200 there, 503 elsewhere',
  async run(driver) {
    const nodes = await driver.nodes();
    assert.ok(nodes.length >= 2, `needs two nodes, the cluster has ${nodes.length}`);
    const home = nodes.at(-1);
    assert.ok(home !== undefined);
    const pod = webPod('local-only', 'local-only', { nodeName: home.name });
    const service = serviceObject('local-only', {
      type: 'LoadBalancer',
      loadBalancerClass: FOREIGN_LOAD_BALANCER_CLASS,
      externalTrafficPolicy: 'Local',
      selector: { app: 'local-only' },
      ports: [{ name: 'http', port: 80, targetPort: 80 }],
    });
    const manifest = manifestList([pod, service]);
    await driver.apply(manifest);
    try {
      await driver.waitFor('pod/local-only', 'condition=Ready', 180);
      const [nodePort, healthPort] = (
        await eventually('the node port and the health check node port', async () => {
          const ports = await driver.read(
            'service/local-only',
            '{.spec.ports[0].nodePort} {.spec.healthCheckNodePort}',
          );
          return /^\d+ \d+$/.test(ports) ? ports : undefined;
        })
      ).split(' ');
      const homeUrl = `http://${home.address}:${nodePort}/`;
      await waitUntilOutsideReaches(driver, homeUrl);
      assert.equal(hostInBody((await driver.fetchFromOutside(homeUrl)).body), 'local-only');
      for (const node of nodes.filter((candidate) => candidate !== home)) {
        const other = await driver.fetchFromOutside(`http://${node.address}:${nodePort}/`, 1);
        assert.notEqual(other.curlExitCode, 0, `${node.name} has no local endpoint and must not answer`);
      }
      await eventually(
        'the health check node ports',
        async () => {
          for (const node of nodes) {
            const answer = await driver.fetchFromOutside(`http://${node.address}:${healthPort}/`, 2);
            if (answer.httpStatus !== (node === home ? 200 : 503)) return undefined;
            const body = JSON.parse(answer.body) as HealthCheckAnswer;
            if (body.localEndpoints !== (node === home ? 1 : 0)) return undefined;
          }
          return true;
        },
        20_000,
      );
    } finally {
      await driver.delete(manifest);
    }
  },
};

/** loadBalancerSourceRanges: the ingress IP serves a client inside the ranges and no one else. */
export const loadBalancerSourceRangesScenario: Scenario = {
  name: 'loadBalancerSourceRanges: a client outside the ranges is not served, one inside is',
  async run(driver) {
    await ensureDemo(driver);
    const clientIp = await driver.read('pod/client', '{.status.podIP}');
    assert.match(clientIp, /^\d+\.\d+\.\d+\.\d+$/);
    const withRanges = (ranges: string[]) =>
      serviceManifest('ranged', {
        type: 'LoadBalancer',
        loadBalancerClass: FOREIGN_LOAD_BALANCER_CLASS,
        selector: DEMO_SELECTOR,
        loadBalancerSourceRanges: ranges,
        ports: [{ name: 'http', port: DEMO_PORT, targetPort: DEMO_TARGET_PORT }],
      });
    const url = `http://${RANGED_INGRESS_IP}:${DEMO_PORT}/`;
    // TEST-NET-1 (192.0.2.0/24) holds no client of any cluster: it keeps the list non-empty.
    await driver.apply(withRanges(['192.0.2.0/24', `${clientIp}/32`]));
    try {
      await setIngress(driver, 'ranged', RANGED_INGRESS_IP);
      await waitUntilClientReaches(driver, url);
      await driver.apply(withRanges(['192.0.2.0/24']));
      await eventually('the client to be turned away once the ranges exclude it', async () => {
        const [request] = await requestsFromClient(driver, url, 1, 1);
        return request !== undefined && request.exitCode !== 0 ? true : undefined;
      });
      const attempts = await requestsFromClient(driver, url, 3, 1);
      for (const attempt of attempts) {
        assert.notEqual(attempt.exitCode, 0, `the client outside the ranges was served: ${attempt.output}`);
      }
    } finally {
      await driver.delete(withRanges([]));
    }
  },
};
