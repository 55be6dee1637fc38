/**
 * Giving an IP back, on the real kernel: three node namespaces and a client on one LAN bridge,
 * one `portico-l2-announcer` process per node against the local API server. The first choice's
 * announcer is killed, another node takes over and keeps the IP while the killed agent stays
 * dead; once it runs again the IP returns to it. A sampler checks the nodes' interfaces the
 * whole time: the IP is never on two of them.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { kubeConfigFor } from '../../controllers/runtime/testing/harness.ts';
import { type ApiServer, startApiServer } from '../../e2e/apiserver/index.ts';
import { NetnsDataplane, type NodeNetwork, newRunId } from '../../e2e/local/netns.ts';
import { preferenceOrder } from './eligibility.ts';

const execFileAsync = promisify(execFile);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const announcerScript = new URL('./portico-l2-announcer.ts', import.meta.url).pathname;
const LB_IP = '198.18.200.11';
const LB_POOL = '198.18.200.0/24';

function nodeName(node: NodeNetwork): string {
  return `node-${node.index}`;
}

/** Starts an announcer and resolves once it printed READY; rejects if it exits first. */
function startAnnouncer(kubeconfigPath: string, node: NodeNetwork): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        announcerScript,
        `--node-name=${nodeName(node)}`,
        `--kubeconfig=${kubeconfigPath}`,
        '--lease-namespace=default',
        `--netns=${node.namespace}`,
        '--log-level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes('READY\n')) resolve(child);
    });
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4_000);
    });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`announcer of ${nodeName(node)} exited (${signal ?? code}): ${stderr}`)),
    );
  });
}

/** Nodes whose LAN interface carries `ip` now. */
async function carriers(dataplane: NetnsDataplane, ip: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of dataplane.nodes) {
    const out = await dataplane.ip.inNamespace(node.namespace, ['-j', 'addr', 'show', 'dev', 'lan0']);
    const links = JSON.parse(out) as { addr_info?: { local?: string }[] }[];
    if (links.some((link) => (link.addr_info ?? []).some((info) => info.local === ip)))
      found.push(nodeName(node));
  }
  return found;
}

async function lanMac(dataplane: NetnsDataplane, namespace: string): Promise<string> {
  const out = await dataplane.ip.inNamespace(namespace, ['-j', 'link', 'show', 'dev', 'lan0']);
  return ((JSON.parse(out) as { address: string }[])[0]?.address ?? '').toLowerCase();
}

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
      for (const index of [0, 1, 2]) {
        const node = await dataplane.addNode(index);
        await core.createNode({
          body: {
            metadata: { name: nodeName(node) },
            status: {
              conditions: [{ type: 'Ready', status: 'True' }],
              addresses: [{ type: 'InternalIP', address: node.lanAddress }],
            },
          },
        });
      }
      const client = await dataplane.addClient(0);
      await dataplane.ip.inNamespace(client.namespace, ['route', 'add', LB_POOL, 'dev', 'lan0']);
      await Promise.all(
        dataplane.nodes.map(async (node) => {
          announcers.set(nodeName(node), await startAnnouncer(kubeconfigPath, node));
        }),
      );
      const [first] = preferenceOrder(
        dataplane.nodes.map((node) => nodeName(node)),
        LB_IP,
      ) as [string];
      const firstNode = dataplane.nodes.find((node) => nodeName(node) === first)!;

      await core.createNamespacedService({
        namespace: 'default',
        body: { metadata: { name: 'web' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } },
      });
      const created = await core.readNamespacedService({ namespace: 'default', name: 'web' });
      await core.replaceNamespacedServiceStatus({
        namespace: 'default',
        name: 'web',
        body: { ...created, status: { loadBalancer: { ingress: [{ ip: LB_IP, ipMode: 'VIP' }] } } },
      });
      await waitUntil(`${first} carrying ${LB_IP}`, 10_000, async () => {
        return (await carriers(dataplane, LB_IP)).join() === first;
      });
      sampler = (async () => {
        while (sampling) samples.push({ atMs: Date.now(), carriers: await carriers(dataplane, LB_IP) });
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
        const now = await carriers(dataplane, LB_IP);
        second = now[0] ?? '';
        return now.length === 1 && second !== first;
      });
      // The killed agent renewed nothing since the takeover: the IP must stay where it is.
      await sleep(3_000);
      assert.deepEqual(
        await carriers(dataplane, LB_IP),
        [second],
        'no flapping while the first choice is dead',
      );

      const restartedAt = Date.now();
      announcers.set(first, await startAnnouncer(kubeconfigPath, firstNode));
      const backMs = await waitUntil(`${LB_IP} back on ${first}`, 10_000, async () => {
        return (await carriers(dataplane, LB_IP)).join() === first;
      });
      const firstMac = await lanMac(dataplane, firstNode.namespace);
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
