/**
 * LoadBalancer with a pool, end to end (issue #9's acceptance, seeds 000 and 003): a
 * LoadBalancerIPPool over the driver's LAN range, a Service of type LoadBalancer gets an address
 * from it (`EXTERNAL-IP` in `kubectl get svc`), a client outside every node reaches the pods
 * through it, exactly one node answers ARP for it, and deleting the Service gives the address
 * back to the pool.
 *
 * The ARP check needs more than {@link ScenarioDriver}: a driver that is also an
 * {@link ArpProbingDriver}. Drivers without it skip that check (kind's outside client is a
 * container on the docker network, which is not where the nodes answer ARP for Portico's pool).
 */
import assert from 'node:assert/strict';
import {
  LOAD_BALANCER_IP_POOL_API_VERSION,
  LOAD_BALANCER_IP_POOL_KIND,
  LOAD_BALANCER_IP_POOL_PLURAL,
} from '../../api/loadbalancerippool.ts';
import { SCENARIO_NAMESPACE, type Scenario, type ScenarioDriver } from './driver.ts';
import {
  eventually,
  hostInBody,
  ipv4InRange,
  manifestList,
  podAddresses,
  serviceManifest,
  webDeployment,
} from './service-checks.ts';

const APP = 'lb-web';
const POOL = 'portico-e2e-lb-pool';

/** A driver that can ask the LAN which machines answer ARP for an address. */
export interface ArpProbingDriver extends ScenarioDriver {
  /**
   * The distinct MAC addresses that answered ARP requests for `ip` sent by the outside client on
   * the nodes' LAN (lower case; empty when nobody answered).
   */
  arpResponders(ip: string): Promise<string[]>;
}

function canProbeArp(driver: ScenarioDriver): driver is ArpProbingDriver {
  return typeof (driver as Partial<ArpProbingDriver>).arpResponders === 'function';
}

function poolManifest(range: string): string {
  return manifestList([
    {
      apiVersion: LOAD_BALANCER_IP_POOL_API_VERSION,
      kind: LOAD_BALANCER_IP_POOL_KIND,
      metadata: { name: POOL },
      spec: { addresses: [range] },
    },
  ]);
}

function lbServiceManifest(): string {
  return serviceManifest(APP, {
    type: 'LoadBalancer',
    selector: { app: APP },
    ports: [{ name: 'http', port: 80, targetPort: 'http' }],
  });
}

function deploymentManifest(): string {
  return manifestList([webDeployment(APP, 2)]);
}

/** The EXTERNAL-IP cell of the Service's row in `kubectl get svc`. */
async function externalIpColumn(driver: ScenarioDriver): Promise<string> {
  const table = await driver.kubectl(['get', 'svc', APP, '-n', SCENARIO_NAMESPACE]);
  const [header = '', row = ''] = table.trim().split('\n');
  const column = header.split(/\s+/).indexOf('EXTERNAL-IP');
  assert.ok(column >= 0, `kubectl get svc shows an EXTERNAL-IP column:\n${table}`);
  return row.split(/\s+/)[column] ?? '';
}

async function allocatedInPool(driver: ScenarioDriver): Promise<string> {
  return driver.read(`${LOAD_BALANCER_IP_POOL_PLURAL}/${POOL}`, '{.status.allocated}');
}

/** The LoadBalancer scenario; see the module comment. */
export const loadBalancerPoolScenario: Scenario = {
  name: 'LoadBalancer with a pool: EXTERNAL-IP from the pool, reachable from outside, one ARP answer, released on delete',
  async run(driver) {
    const range = await driver.loadBalancerRange();
    const pool = poolManifest(range);
    const service = lbServiceManifest();
    const deployment = deploymentManifest();
    try {
      await driver.apply(pool);
      await driver.waitFor(`${LOAD_BALANCER_IP_POOL_PLURAL}/${POOL}`, 'condition=Ready');
      assert.equal(await allocatedInPool(driver), '0', `allocated addresses of the fresh pool ${POOL}`);
      await driver.apply(deployment);
      await driver.apply(service);
      await driver.waitFor(`deployment/${APP}`, 'condition=Available', 120);
      const podNames = (await podAddresses(driver, APP)).map((pod) => pod.name);

      const ip = await eventually(`an ingress IP in the status of service/${APP}`, async () => {
        const found = await driver.read(`service/${APP}`, '{.status.loadBalancer.ingress[0].ip}');
        return found === '' ? undefined : found;
      });
      assert.ok(ipv4InRange(ip, range), `${ip} lies in the pool's range ${range}`);
      assert.equal(await driver.read(`service/${APP}`, '{.status.loadBalancer.ingress[0].ipMode}'), 'VIP');
      assert.equal(await allocatedInPool(driver), '1', `allocated addresses of ${POOL} after the assignment`);
      assert.equal(await externalIpColumn(driver), ip, 'EXTERNAL-IP in kubectl get svc');

      const url = `http://${ip}/`;
      await eventually(`${url} to answer a client outside the cluster`, async () => {
        const response = await driver.fetchFromOutside(url, 2);
        return response.httpStatus === 200 ? true : undefined;
      });
      for (let attempt = 0; attempt < 10; attempt += 1) {
        const response = await driver.fetchFromOutside(url, 3);
        assert.equal(
          response.httpStatus,
          200,
          `request ${attempt + 1} to ${url}: curl exit ${response.curlExitCode}`,
        );
        const host = hostInBody(response.body);
        assert.ok(
          host !== undefined && podNames.includes(host),
          `${url} answered ${JSON.stringify(response.body)}`,
        );
      }

      if (canProbeArp(driver)) {
        const responders = await driver.arpResponders(ip);
        assert.equal(
          responders.length,
          1,
          `nodes answering ARP for ${ip}: ${responders.join(', ') || 'none'}`,
        );
      }

      await driver.delete(service);
      await eventually(`${POOL} to count the address of ${APP} as free again`, async () =>
        (await allocatedInPool(driver)) === '0' ? true : undefined,
      );
      if (canProbeArp(driver)) {
        await eventually(`every node to stop answering ARP for ${ip}`, async () =>
          (await driver.arpResponders(ip)).length === 0 ? true : undefined,
        );
      }
    } finally {
      await driver.delete(service);
      await driver.delete(deployment);
      await driver.delete(pool);
    }
  },
};
