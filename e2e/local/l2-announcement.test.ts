/**
 * L2 announcement in network namespaces: three node namespaces and a client on one LAN bridge,
 * one `portico-l2-announcer` process per node against the local API server. Checks that exactly
 * one node answers ARP for a LoadBalancer IP and measures how long the client loses the IP when
 * the announcing node's announcer is killed with SIGKILL.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import {
  addAnnouncementLan,
  l2NodeName,
  lanCarriers,
  lanMac,
  publishLoadBalancerIP,
  startAnnouncer,
  startUntilReady,
} from '../../agent/l2/testing.ts';
import { kubeConfigFor } from '../../controllers/runtime/testing/harness.ts';
import { type ApiServer, startApiServer } from '../apiserver/index.ts';
import { NetnsDataplane, newRunId } from './netns.ts';

const execFileAsync = promisify(execFile);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const LB_IP = '198.18.200.10';
const LB_POOL = '198.18.200.0/24';
const PORT = 8080;

/** The MACs that answered ARP for `ip`, asked from the client namespace with `arping`. */
async function arpResponders(
  dataplane: NetnsDataplane,
  clientNamespace: string,
  ip: string,
): Promise<string[]> {
  const { stdout } = await execFileAsync(
    dataplane.ip.ipPath,
    ['netns', 'exec', clientNamespace, 'arping', '-c', '3', '-w', '3', '-I', 'lan0', ip],
    { encoding: 'utf8' },
  ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
  const macs = [...stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]+)\]/g)].map((match) =>
    match[1]!.toLowerCase(),
  );
  return [...new Set(macs)];
}

/** GET http://ip:port/ from the client namespace; the node name that answered, or undefined. */
async function fetchFromClient(
  dataplane: NetnsDataplane,
  clientNamespace: string,
): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync(
      dataplane.ip.ipPath,
      ['netns', 'exec', clientNamespace, 'curl', '-s', '--max-time', '0.4', `http://${LB_IP}:${PORT}/`],
      { encoding: 'utf8' },
    );
    return stdout.trim() === '' ? undefined : stdout.trim();
  } catch {
    return undefined;
  }
}

describe('L2 announcement in network namespaces', {
  skip: isRoot ? false : 'needs root and iproute2',
}, () => {
  test('exactly one node answers ARP for the LB IP; SIGKILL of its announcer fails over within 5 s', async (t) => {
    const dataplane = new NetnsDataplane({ runId: newRunId() });
    const processes: ChildProcess[] = [];
    let server: ApiServer | undefined;
    try {
      server = await startApiServer({ bookmarkIntervalMs: 60_000 });
      const core = kubeConfigFor(server.kubeconfigPath).makeApiClient(CoreV1Api);
      // The pool is on the LAN: the client resolves its addresses with ARP instead of routing them.
      const client = await addAnnouncementLan(dataplane, core, 3, LB_POOL);

      for (const node of dataplane.nodes) {
        const name = l2NodeName(node);
        const listener = `require('node:http').createServer((q, s) => s.end(${JSON.stringify(name)})).listen(${PORT}, '0.0.0.0', () => console.log('READY'))`;
        processes.push(
          await startUntilReady(
            dataplane.ip.ipPath,
            ['netns', 'exec', node.namespace, process.execPath, '-e', listener],
            `listener on ${name}`,
          ),
        );
      }
      const announcers = new Map<string, ChildProcess>();
      await Promise.all(
        dataplane.nodes.map(async (node) => {
          const child = await startAnnouncer(server!.kubeconfigPath, node);
          processes.push(child);
          announcers.set(l2NodeName(node), child);
        }),
      );

      await publishLoadBalancerIP(core, { ip: LB_IP, port: PORT });

      const deadline = Date.now() + 10_000;
      while ((await lanCarriers(dataplane, LB_IP)).length !== 1) {
        assert.ok(Date.now() < deadline, 'one node carries the LB IP within 10 s');
        await sleep(100);
      }
      const [firstHolder] = await lanCarriers(dataplane, LB_IP);
      const firstNode = dataplane.nodes.find((node) => l2NodeName(node) === firstHolder)!;
      assert.equal(await fetchFromClient(dataplane, client.namespace), firstHolder);
      assert.deepEqual(await arpResponders(dataplane, client.namespace, LB_IP), [
        await lanMac(dataplane, firstNode),
      ]);
      assert.deepEqual(await lanCarriers(dataplane, LB_IP), [firstHolder]);

      const killedAt = Date.now();
      announcers.get(firstHolder!)!.kill('SIGKILL');
      let answeredBy: string | undefined;
      let mostCarriers = 0;
      while (Date.now() - killedAt < 15_000) {
        mostCarriers = Math.max(mostCarriers, (await lanCarriers(dataplane, LB_IP)).length);
        answeredBy = await fetchFromClient(dataplane, client.namespace);
        if (answeredBy !== undefined && answeredBy !== firstHolder) break;
        await sleep(50);
      }
      const failoverMs = Date.now() - killedAt;
      t.diagnostic(
        `failover after SIGKILL of ${firstHolder}'s announcer: ${failoverMs} ms (to ${answeredBy})`,
      );
      assert.notEqual(answeredBy, undefined, 'the client reaches the LB IP again');
      assert.notEqual(answeredBy, firstHolder, 'through another node');
      assert.ok(failoverMs < 5_000, `failover took ${failoverMs} ms`);
      assert.ok(mostCarriers <= 1, 'the IP was never configured on two nodes at once');
      const secondNode = dataplane.nodes.find((node) => l2NodeName(node) === answeredBy)!;
      assert.deepEqual(await lanCarriers(dataplane, LB_IP), [answeredBy]);
      assert.deepEqual(await arpResponders(dataplane, client.namespace, LB_IP), [
        await lanMac(dataplane, secondNode),
      ]);
    } finally {
      for (const child of processes) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      await dataplane.destroy();
      await server?.close();
    }
  });
});
