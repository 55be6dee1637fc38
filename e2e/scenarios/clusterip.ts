/**
 * ClusterIP traffic from a client inside the cluster (seed 000 and issue #7's acceptance): the
 * demo reaches all 4 pods, a Service without endpoints refuses at once, sessionAffinity ClientIP
 * sticks to one pod, and a deleted pod leaves the rotation.
 */
import assert from 'node:assert/strict';
import {
  DEMO_BACKENDS,
  DEMO_PORT,
  DEMO_SELECTOR,
  DEMO_TARGET_PORT,
  ensureDemo,
  hostOfPod,
  hostsFromClient,
  requestsFromClient,
  waitUntilClientReaches,
} from './demo.ts';
import { SCENARIO_NAMESPACE, type Scenario, type ScenarioDriver } from './driver.ts';
import { eventually, mentionsAddress, rulesOfEveryNode, serviceManifest } from './service-checks.ts';

async function clusterIpOf(driver: ScenarioDriver, service: string): Promise<string> {
  return eventually(`a ClusterIP for service/${service}`, async () => {
    const ip = await driver.read(`service/${service}`, '{.spec.clusterIP}');
    return ip === '' ? undefined : ip;
  });
}

/** Seed 000: 15 requests to the ClusterIP reach all 4 pods. */
export const clusterIpDemoScenario: Scenario = {
  name: "the seeds' ClusterIP demo: 15 requests to the ClusterIP reach all 4 pods",
  async run(driver) {
    const { clusterIp } = await ensureDemo(driver);
    const url = `http://${clusterIp}:${DEMO_PORT}/`;
    await waitUntilClientReaches(driver, url);
    // Backends are chosen at random, as kube-proxy does: one batch of 15 misses some pod with
    // probability about 5%, so a batch that misses one is repeated (at most 3 batches, ~1e-4).
    const batches: string[][] = [];
    for (let batch = 0; batch < 3; batch += 1) {
      const hosts = await hostsFromClient(driver, url, 15);
      batches.push(hosts);
      if (new Set(hosts).size === DEMO_BACKENDS) return;
    }
    assert.fail(
      `15 requests never reached ${DEMO_BACKENDS} pods; hosts per batch: ${batches.map((b) => b.join(' ')).join(' | ')}`,
    );
  },
};

/** A Service whose selector matches nothing refuses connections (REJECT), not a timeout. */
export const noEndpointsRefusedScenario: Scenario = {
  name: 'a Service without ready endpoints refuses connections at once',
  async run(driver) {
    const manifest = serviceManifest('nobody', {
      selector: { app: 'nobody-matches' },
      ports: [{ name: 'http', port: 80, targetPort: 80 }],
    });
    await driver.apply(manifest);
    try {
      const clusterIp = await clusterIpOf(driver, 'nobody');
      await eventually(`service/nobody (${clusterIp}) in the rules of every node`, async () => {
        for (const rules of (await rulesOfEveryNode(driver)).values()) {
          if (!mentionsAddress(rules, clusterIp)) return undefined;
        }
        return true;
      });
      const [request] = await requestsFromClient(driver, `http://${clusterIp}/`, 1, 5);
      assert.ok(request !== undefined);
      assert.equal(request.exitCode, 7, `curl exit ${request.exitCode} (7 is refused): ${request.output}`);
      assert.ok(request.seconds < 1, `refused after ${request.seconds} s`);
    } finally {
      await driver.delete(manifest);
    }
  },
};

/** sessionAffinity ClientIP: one client keeps reaching one pod. */
export const sessionAffinityScenario: Scenario = {
  name: 'sessionAffinity ClientIP: 20 requests from one client reach one pod',
  async run(driver) {
    await ensureDemo(driver);
    const manifest = serviceManifest('sticky', {
      selector: DEMO_SELECTOR,
      sessionAffinity: 'ClientIP',
      ports: [{ name: 'http', port: DEMO_PORT, targetPort: DEMO_TARGET_PORT }],
    });
    await driver.apply(manifest);
    try {
      const url = `http://${await clusterIpOf(driver, 'sticky')}:${DEMO_PORT}/`;
      await waitUntilClientReaches(driver, url);
      const hosts = await hostsFromClient(driver, url, 20);
      assert.equal(new Set(hosts).size, 1, `hosts seen: ${hosts.join(' ')}`);
    } finally {
      await driver.delete(manifest);
    }
  },
};

/**
 * Deleting a pod takes it out of every node's rules and of the rotation. The victim is the seed's
 * standalone pod: no controller replaces it, so its address cannot come back with a new pod before
 * the check (the next {@link ensureDemo} recreates it).
 */
export const deletedPodLeavesRotationScenario: Scenario = {
  name: 'a deleted pod leaves the rules of every node and the rotation',
  async run(driver) {
    const { clusterIp, pods } = await ensureDemo(driver);
    const victim = pods.find((pod) => pod.name === 'examplepod');
    assert.ok(victim !== undefined, `examplepod among ${pods.map((pod) => pod.name).join(' ')}`);
    const victimHost = await hostOfPod(driver, victim.ip);
    const deletedAt = performance.now();
    await driver.kubectl([
      'delete',
      'pod',
      victim.name,
      '-n',
      SCENARIO_NAMESPACE,
      '--grace-period=0',
      '--force',
      '--wait=false',
    ]);
    const goneAt = await eventually(`${victim.ip} gone from the rules of every node`, async () => {
      for (const rules of (await rulesOfEveryNode(driver)).values()) {
        if (mentionsAddress(rules, victim.ip)) return undefined;
      }
      return performance.now();
    });
    // Pod deletion, slice update, then at most one --min-sync-period (1 s by default) to the rules.
    const seconds = (goneAt - deletedAt) / 1000;
    assert.ok(seconds < 5, `rules still named ${victim.ip} ${seconds.toFixed(1)} s after the delete`);
    const hosts = await hostsFromClient(driver, `http://${clusterIp}:${DEMO_PORT}/`, 15);
    assert.ok(!hosts.includes(victimHost), `the deleted pod still answered: ${hosts.join(' ')}`);
  },
};
