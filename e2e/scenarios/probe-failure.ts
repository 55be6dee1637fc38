/**
 * A failing readiness probe takes a pod out of rotation and its recovery brings it back: the
 * EndpointSlice marks the pod's endpoint `ready: false`, every node drops it from the Service's
 * rules, and no request to the ClusterIP reaches it while it is unready; once the probe passes
 * again the endpoint turns ready and requests reach the pod again.
 */
import assert from 'node:assert/strict';
import type { Scenario, ScenarioDriver } from './driver.ts';
import {
  eventually,
  hostsAnsweringInCluster,
  manifestList,
  mentionsAddress,
  podAddresses,
  rulesOfEveryNode,
  serviceObject,
  sliceEndpoints,
  webDeployment,
} from './service-checks.ts';

const APP = 'probe-web';
const REPLICAS = 3;

function manifests(): string {
  return manifestList([
    webDeployment(APP, REPLICAS),
    serviceObject(APP, { selector: { app: APP }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] }),
  ]);
}

async function endpointReadiness(driver: ScenarioDriver, ip: string): Promise<string | undefined> {
  return (await sliceEndpoints(driver, APP)).find((endpoint) => endpoint.address === ip)?.ready;
}

/** Waits until `ip` is (or is no longer) named in the rules of every node. */
async function waitForRules(driver: ScenarioDriver, ip: string, present: boolean): Promise<void> {
  await eventually(`${ip} ${present ? 'in' : 'gone from'} the rules of every node`, async () => {
    for (const rules of (await rulesOfEveryNode(driver)).values()) {
      if (mentionsAddress(rules, ip) !== present) return undefined;
    }
    return true;
  });
}

/** The readiness probe failure scenario; see the module comment. */
export const readinessProbeFailureScenario: Scenario = {
  name: 'readiness probe failure: the pod leaves the slice and the rules, and comes back',
  async run(driver) {
    const objects = manifests();
    await driver.ensureClient();
    await driver.apply(objects);
    try {
      await driver.waitFor(`deployment/${APP}`, 'condition=Available', 120);
      const pods = await eventually(`${REPLICAS} pods of ${APP} with IPs`, async () => {
        const found = await podAddresses(driver, APP);
        return found.length === REPLICAS ? found : undefined;
      });
      const clusterIp = await driver.read(`service/${APP}`, '{.spec.clusterIP}');
      const url = `http://${clusterIp}/`;
      for (const pod of pods) await waitForRules(driver, pod.ip, true);
      const [victim, ...others] = pods;
      assert.ok(victim !== undefined);
      const otherNames = others.map((pod) => pod.name).sort();

      await driver.setPodReadiness(victim.name, false);
      await driver.waitFor(`pod/${victim.name}`, 'condition=Ready=false');
      await eventually(`the endpoint of ${victim.name} to turn ready=false`, async () =>
        (await endpointReadiness(driver, victim.ip)) === 'false' ? true : undefined,
      );
      await waitForRules(driver, victim.ip, false);
      const whileUnready = await hostsAnsweringInCluster(driver, url, 20);
      assert.ok(
        !whileUnready.includes(victim.name),
        `unready ${victim.name} answered: ${whileUnready.join(' ')}`,
      );
      assert.deepEqual([...new Set(whileUnready)].sort(), otherNames, 'the ready pods keep answering');

      await driver.setPodReadiness(victim.name, true);
      await driver.waitFor(`pod/${victim.name}`, 'condition=Ready');
      await eventually(`the endpoint of ${victim.name} to turn ready=true`, async () =>
        (await endpointReadiness(driver, victim.ip)) === 'true' ? true : undefined,
      );
      await waitForRules(driver, victim.ip, true);
      // With three backends, 30 requests all missing one of them has odds of about 5 in a million.
      const afterRecovery = await hostsAnsweringInCluster(driver, url, 30);
      assert.ok(afterRecovery.includes(victim.name), `${victim.name} is back in rotation`);
    } finally {
      await driver.delete(objects);
    }
  },
};
