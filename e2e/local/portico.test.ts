/**
 * The plumbing `startPortico` sets up, on the real kernel: the controller-manager serves the
 * LoadBalancerIPPool webhook, and the agents announce LoadBalancer IPs from
 * {@link LOCAL_L2_POOL_CIDR} on the LAN, where the client reaches them on-link (by ARP, not
 * through a node acting as its router).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { SCENARIO_NAMESPACE, webContainer } from '../scenarios/driver.ts';
import { LocalScenarioDriver } from '../scenarios/local-driver.ts';
import { manifestList } from '../scenarios/service-checks.ts';
import { defaultIpPath } from './netns.ts';
import { LOCAL_L2_POOL_CIDR } from './portico.ts';

const execFileAsync = promisify(execFile);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function pool(name: string, addresses: string[]): string {
  return manifestList([
    {
      apiVersion: 'portico.dev/v1alpha1',
      kind: 'LoadBalancerIPPool',
      metadata: { name },
      spec: { addresses },
    },
  ]);
}

async function inNamespace(namespace: string, args: readonly string[]): Promise<string> {
  const { stdout } = await execFileAsync(defaultIpPath, ['netns', 'exec', namespace, ...args], {
    encoding: 'utf8',
  });
  return stdout;
}

describe('startPortico in dataplane mode', { skip: isRoot ? false : 'needs root and iproute2' }, () => {
  test('pools are validated by the controller-manager; a LoadBalancer IP is announced on the LAN, reached on-link, and survives a SIGKILL of the announcing agent', async (t) => {
    const driver = await LocalScenarioDriver.start({ mode: 'iptables', logLevel: 'warn' });
    try {
      await driver.apply(pool('lan', [LOCAL_L2_POOL_CIDR]));
      await assert.rejects(
        driver.apply(pool('overlapping', ['198.18.200.128/25'])),
        /spec\.addresses\[0\]: Invalid value: "198\.18\.200\.128\/25": overlaps "198\.18\.200\.0\/24" of LoadBalancerIPPool "lan"/,
      );

      await driver.apply(
        manifestList([
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: 'l2-web' },
            spec: {
              replicas: 1,
              selector: { matchLabels: { app: 'l2-web' } },
              template: {
                metadata: { labels: { app: 'l2-web' } },
                spec: { terminationGracePeriodSeconds: 0, containers: [webContainer()] },
              },
            },
          },
          {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name: 'l2-web' },
            spec: {
              type: 'LoadBalancer',
              selector: { app: 'l2-web' },
              ports: [{ name: 'http', port: 80, targetPort: 'http' }],
            },
          },
        ]),
        SCENARIO_NAMESPACE,
      );
      let ip = '';
      for (let attempt = 0; ip === '' && attempt < 100; attempt++) {
        ip = await driver.read('service/l2-web', '{.status.loadBalancer.ingress[0].ip}', SCENARIO_NAMESPACE);
        if (ip === '') await sleep(100);
      }
      assert.match(ip, /^198\.18\.200\.\d+$/, 'an address from the pool');

      const client = driver.cluster.client!;
      assert.match(
        await inNamespace(client.namespace, ['ip', 'route', 'get', ip]),
        new RegExp(`^${ip.replaceAll('.', '\\.')} dev lan0 src`),
        'the client reaches the pool on-link',
      );
      const startedAt = Date.now();
      let response = await driver.fetchFromOutside(`http://${ip}/`, 2);
      while (response.httpStatus !== 200 && Date.now() - startedAt < 30_000) {
        await sleep(200);
        response = await driver.fetchFromOutside(`http://${ip}/`, 2);
      }
      assert.equal(response.httpStatus, 200, `the client reaches http://${ip}/ (${response.body})`);
      t.diagnostic(`reachable ${Date.now() - startedAt} ms after the IP was assigned`);

      const carriersOf = async (): Promise<number[]> => {
        const carriers: number[] = [];
        for (const node of driver.cluster.dataplane!.nodes) {
          const addresses = await inNamespace(node.namespace, [
            'ip',
            '-4',
            '-o',
            'addr',
            'show',
            'dev',
            'lan0',
          ]);
          if (addresses.includes(` ${ip}/32 `)) carriers.push(node.index);
        }
        return carriers;
      };
      const carriers = await carriersOf();
      assert.equal(carriers.length, 1, `exactly one node carries ${ip}: node-${carriers.join(', node-')}`);

      // The announcing node's agent dies (SIGKILL, no cleanup): another node must take the IP over
      // and the client must reach it again within 5 s, without the IP ever being on two nodes.
      const killedAt = performance.now();
      await driver.agents.killAgent(carriers[0]!);
      let recoveredMs: number | undefined;
      while (recoveredMs === undefined && performance.now() - killedAt < 15_000) {
        const now = await carriersOf();
        assert.ok(now.length <= 1, `${ip} is on one node at most: node-${now.join(', node-')}`);
        const answer = await driver.fetchFromOutside(`http://${ip}/`, 1);
        if (answer.httpStatus === 200 && now.length === 1 && now[0] !== carriers[0]) {
          recoveredMs = performance.now() - killedAt;
        }
      }
      assert.ok(
        recoveredMs !== undefined,
        `another node took ${ip} over after node-${carriers[0]}'s agent died`,
      );
      t.diagnostic(`reachable through another node ${Math.round(recoveredMs)} ms after SIGKILL of the agent`);
      assert.ok(recoveredMs < 5_000, `failover took ${Math.round(recoveredMs)} ms`);
    } finally {
      await driver.stop();
    }
  });
});
