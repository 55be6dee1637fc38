/**
 * Giving an IP back, on the real kernel: three node namespaces and a client on one LAN bridge,
 * one `portico-l2-announcer` process per node against the local API server. The first choice's
 * announcer is killed, another node takes over and keeps the IP while the killed agent stays
 * dead; once it runs again the IP returns to it. A sampler checks the nodes' interfaces the
 * whole time: the IP is never on two of them.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { kubeConfigFor } from '../../controllers/runtime/testing/harness.ts';
import { type ApiServer, startApiServer } from '../../e2e/apiserver/index.ts';
import { NetnsDataplane, newRunId } from '../../e2e/local/netns.ts';
import { preferenceOrder } from './eligibility.ts';
import {
  addAnnouncementLan,
  l2NodeName,
  lanCarriers,
  lanMac,
  publishLoadBalancerIP,
  startAnnouncer,
} from './testing.ts';

const execFileAsync = promisify(execFile);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const LB_IP = '198.18.200.11';
const LB_POOL = '198.18.200.0/24';

/** The MAC the client's neighbour table holds for `ip`, if any. */
async function clientNeighbour(dataplane: NetnsDataplane, namespace: string, ip: string): Promise<string> {
  const out = await dataplane.ip.inNamespace(namespace, ['-j', 'neigh', 'show', ip, 'dev', 'lan0']);
  return ((JSON.parse(out) as { lladdr?: string }[])[0]?.lladdr ?? '').toLowerCase();
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    assert.ok(Date.now() - started < timeoutMs, `${what} within ${timeoutMs} ms`);
    await sleep(50);
  }
  return Date.now() - started;
}

describe('handing an IP back in network namespaces', {
  skip: isRoot ? false : 'needs root and iproute2',
}, () => {
  test('after SIGKILL the IP stays on the new holder; the restarted first choice gets it back, never on two nodes', async (t) => {
    const dataplane = new NetnsDataplane({ runId: newRunId() });
    const announcers = new Map<string, ChildProcess>();
    let server: ApiServer | undefined;
    let sampling = true;
    const samples: { atMs: number; carriers: string[] }[] = [];
    let sampler: Promise<void> = Promise.resolve();
    try {
      server = await startApiServer({ bookmarkIntervalMs: 60_000 });
      const kubeconfigPath = server.kubeconfigPath;
      const core = kubeConfigFor(kubeconfigPath).makeApiClient(CoreV1Api);
      const client = await addAnnouncementLan(dataplane, core, 3, LB_POOL);
      await Promise.all(
        dataplane.nodes.map(async (node) => {
          announcers.set(l2NodeName(node), await startAnnouncer(kubeconfigPath, node));
        }),
      );
      const [first] = preferenceOrder(
        dataplane.nodes.map((node) => l2NodeName(node)),
        LB_IP,
      ) as [string];
      const firstNode = dataplane.nodes.find((node) => l2NodeName(node) === first)!;

      await publishLoadBalancerIP(core, { ip: LB_IP });
      await waitUntil(`${first} carrying ${LB_IP}`, 10_000, async () => {
        return (await lanCarriers(dataplane, LB_IP)).join() === first;
      });
      sampler = (async () => {
        while (sampling) samples.push({ atMs: Date.now(), carriers: await lanCarriers(dataplane, LB_IP) });
      })();
      // One datagram gives the client a neighbour entry for the IP, which later takeovers must update.
      await dataplane.ip.inNamespace(client.namespace, ['route', 'get', LB_IP]);
      await execFileAsync(dataplane.ip.ipPath, [
        'netns',
        'exec',
        client.namespace,
        'bash',
        '-c',
        `echo x > /dev/udp/${LB_IP}/9`,
      ]);

      announcers.get(first)!.kill('SIGKILL');
      let second = '';
      const failoverMs = await waitUntil('another node taking the IP over', 10_000, async () => {
        const now = await lanCarriers(dataplane, LB_IP);
        second = now[0] ?? '';
        return now.length === 1 && second !== first;
      });
      // The killed agent renewed nothing since the takeover: the IP must stay where it is.
      await sleep(3_000);
      assert.deepEqual(
        await lanCarriers(dataplane, LB_IP),
        [second],
        'no flapping while the first choice is dead',
      );

      const restartedAt = Date.now();
      announcers.set(first, await startAnnouncer(kubeconfigPath, firstNode));
      const backMs = await waitUntil(`${LB_IP} back on ${first}`, 10_000, async () => {
        return (await lanCarriers(dataplane, LB_IP)).join() === first;
      });
      const firstMac = await lanMac(dataplane, firstNode);
      await waitUntil("the client's neighbour entry moved back by gratuitous ARP", 3_000, async () => {
        return (await clientNeighbour(dataplane, client.namespace, LB_IP)) === firstMac;
      });
      sampling = false;
      await sampler;
      const lastOnSecond = samples.findLast((sample) => sample.carriers.join() === second)!;
      const firstBack = samples.find(
        (sample) => sample.atMs > lastOnSecond.atMs && sample.carriers.length > 0,
      )!;
      t.diagnostic(
        `failover after SIGKILL: ${failoverMs} ms to ${second}; back on ${first} ${backMs} ms after its announcer's READY (${Date.now() - restartedAt} ms after restart); the IP was on no node for at most ${firstBack.atMs - lastOnSecond.atMs} ms of the handover (${samples.length} samples)`,
      );
      const most = Math.max(...samples.map((sample) => sample.carriers.length));
      assert.equal(most, 1, 'the IP was never on two nodes at a sampled moment');
    } finally {
      sampling = false;
      await sampler.catch(() => undefined);
      for (const child of announcers.values()) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      await dataplane.destroy();
      await server?.close();
    }
  });
});
