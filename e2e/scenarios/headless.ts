/**
 * Headless Service (`clusterIP: None`, seed 003): no ClusterIP is allocated and no node gets rules
 * for it, but the EndpointSlice controller still publishes the pods, with their hostnames because
 * the pods name the Service as their subdomain. In kind, CoreDNS answers the Service name with the
 * pod IPs and each `<hostname>.<service>` name with its pod's IP, from Portico's slices.
 */
import assert from 'node:assert/strict';
import { SCENARIO_NAMESPACE, type Scenario, type ScenarioDriver } from './driver.ts';
import {
  eventually,
  manifestList,
  mentionsAddress,
  nslookupAddresses,
  podAddresses,
  rulesOfEveryNode,
  serviceObject,
  sliceEndpoints,
  waitUntilAgentsCaughtUp,
  webPod,
} from './service-checks.ts';

const SERVICE = 'headless-web';
const POD_NAMES = ['headless-web-0', 'headless-web-1'];

function manifests(): string {
  return manifestList([
    serviceObject(SERVICE, {
      clusterIP: 'None',
      selector: { app: SERVICE },
      ports: [{ name: 'http', port: 80, targetPort: 'http' }],
    }),
    ...POD_NAMES.map((name) => webPod(name, SERVICE, { hostname: name, subdomain: SERVICE })),
  ]);
}

async function checkDns(
  driver: ScenarioDriver,
  pods: readonly { name: string; ip: string }[],
): Promise<void> {
  const domain = `${SERVICE}.${SCENARIO_NAMESPACE}.svc.cluster.local`;
  const expected = pods.map((pod) => pod.ip).sort();
  await eventually(`CoreDNS to answer ${domain} with ${expected.join(', ')}`, async () => {
    const answered = nslookupAddresses(await driver.execInClient(['nslookup', domain]));
    return answered.join(',') === expected.join(',') ? true : undefined;
  });
  for (const pod of pods) {
    const name = `${pod.name}.${domain}`;
    const answered = nslookupAddresses(await driver.execInClient(['nslookup', name]));
    assert.deepEqual(answered, [pod.ip], `CoreDNS answer for ${name}`);
  }
}

/** The headless Service scenario; see the module comment. */
export const headlessServiceScenario: Scenario = {
  name: 'headless Service: no ClusterIP, no rules, slices list the pods with hostnames',
  async run(driver) {
    const objects = manifests();
    await driver.ensureClient();
    await driver.apply(objects);
    try {
      for (const name of POD_NAMES) await driver.waitFor(`pod/${name}`, 'condition=Ready');
      assert.equal(await driver.read(`service/${SERVICE}`, '{.spec.clusterIP}'), 'None');
      assert.equal(await driver.read(`service/${SERVICE}`, '{.spec.clusterIPs}'), '["None"]');

      const pods = await podAddresses(driver, SERVICE);
      assert.deepEqual(
        pods.map((pod) => pod.name),
        POD_NAMES,
      );
      const expected = pods.map((pod) => `${pod.ip} ${pod.name} ready=true`).sort();
      await eventually(`the EndpointSlices of ${SERVICE} to list ${expected.join(', ')}`, async () => {
        const listed = (await sliceEndpoints(driver, SERVICE))
          .map((endpoint) => `${endpoint.address} ${endpoint.hostname} ready=${endpoint.ready}`)
          .sort();
        return listed.join(',') === expected.join(',') ? true : undefined;
      });
      for (const pod of pods) {
        const body = await driver.execInClient(['curl', '-sS', '-m', '3', `http://${pod.ip}/`]);
        assert.match(body, new RegExp(`The host is ${pod.name}<`), `pod ${pod.name} answers on its own IP`);
      }

      await waitUntilAgentsCaughtUp(driver);
      for (const [node, rules] of await rulesOfEveryNode(driver)) {
        for (const pod of pods) {
          assert.ok(
            !mentionsAddress(rules, pod.ip),
            `the rules of ${node} mention headless backend ${pod.ip}`,
          );
        }
        assert.ok(
          !rules.includes(`${SCENARIO_NAMESPACE}/${SERVICE}`),
          `the rules of ${node} mention ${SERVICE}`,
        );
      }

      // The local cluster has no DNS server; CoreDNS answering from our slices is kind's to show.
      if (driver.driverName === 'kind') await checkDns(driver, pods);
    } finally {
      await driver.delete(objects);
    }
  },
};
