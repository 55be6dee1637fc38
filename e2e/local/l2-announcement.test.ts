/**
 * L2 announcement in network namespaces: three node namespaces and a client on one LAN bridge,
 * one `portico-l2-announcer` process per node against the local API server. Checks that exactly
 * one node answers ARP for a LoadBalancer IP and measures how long the client loses the IP when
 * the announcing node's announcer is killed with SIGKILL.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { kubeConfigFor } from '../../controllers/runtime/testing/harness.ts';
import { type ApiServer, startApiServer } from '../apiserver/index.ts';
import { NetnsDataplane, type NodeNetwork, newRunId } from './netns.ts';

const execFileAsync = promisify(execFile);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const announcerScript = new URL('../../agent/l2/portico-l2-announcer.ts', import.meta.url).pathname;
const LB_IP = '198.18.200.10';
const LB_POOL = '198.18.200.0/24';
const PORT = 8080;

/** Starts `program` and resolves once it printed READY; rejects if it exits first. */
function startUntilReady(program: string, args: readonly string[], what: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes('READY\n')) resolve(child);
    });
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4_000);
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`${what} exited (${signal ?? code}): ${stderr}`)));
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

async function lanMac(dataplane: NetnsDataplane, node: NodeNetwork): Promise<string> {
  const out = await dataplane.ip.inNamespace(node.namespace, ['-j', 'link', 'show', 'dev', 'lan0']);
  return ((JSON.parse(out) as { address: string }[])[0]?.address ?? '').toLowerCase();
}

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

function nodeName(node: NodeNetwork): string {
  return `node-${node.index}`;
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
      // The pool is on the LAN: the client resolves its addresses with ARP instead of routing them.
      await dataplane.ip.inNamespace(client.namespace, ['route', 'add', LB_POOL, 'dev', 'lan0']);

      for (const node of dataplane.nodes) {
        const name = nodeName(node);
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
          const child = await startUntilReady(
            process.execPath,
            [
              announcerScript,
              `--node-name=${nodeName(node)}`,
              `--kubeconfig=${server!.kubeconfigPath}`,
              '--lease-namespace=default',
              `--netns=${node.namespace}`,
              '--log-level=warn',
            ],
            `announcer of ${nodeName(node)}`,
          );
          processes.push(child);
          announcers.set(nodeName(node), child);
        }),
      );

      await core.createNamespacedService({
        namespace: 'default',
        body: { metadata: { name: 'web' }, spec: { type: 'LoadBalancer', ports: [{ port: PORT }] } },
      });
      const created = await core.readNamespacedService({ namespace: 'default', name: 'web' });
      await core.replaceNamespacedServiceStatus({
        namespace: 'default',
        name: 'web',
        body: { ...created, status: { loadBalancer: { ingress: [{ ip: LB_IP, ipMode: 'VIP' }] } } },
      });

      const deadline = Date.now() + 10_000;
      while ((await carriers(dataplane, LB_IP)).length !== 1) {
        assert.ok(Date.now() < deadline, 'one node carries the LB IP within 10 s');
        await sleep(100);
      }
      const [firstHolder] = await carriers(dataplane, LB_IP);
      const firstNode = dataplane.nodes.find((node) => nodeName(node) === firstHolder)!;
      assert.equal(await fetchFromClient(dataplane, client.namespace), firstHolder);
      assert.deepEqual(await arpResponders(dataplane, client.namespace, LB_IP), [
        await lanMac(dataplane, firstNode),
      ]);
      assert.deepEqual(await carriers(dataplane, LB_IP), [firstHolder]);

      const killedAt = Date.now();
      announcers.get(firstHolder!)!.kill('SIGKILL');
      let answeredBy: string | undefined;
      let mostCarriers = 0;
      while (Date.now() - killedAt < 15_000) {
        mostCarriers = Math.max(mostCarriers, (await carriers(dataplane, LB_IP)).length);
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
      const secondNode = dataplane.nodes.find((node) => nodeName(node) === answeredBy)!;
      assert.deepEqual(await carriers(dataplane, LB_IP), [answeredBy]);
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
