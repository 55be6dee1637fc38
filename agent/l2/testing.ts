/**
 * Test plumbing shared by the L2 announcement checks: publishing a LoadBalancer IP on the local
 * API server, and (needs root) a LAN of node namespaces with one `portico-l2-announcer` process
 * per node, inspected through the kernel's own view of each node's LAN interface.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { ClientNetwork, NetnsDataplane, NodeNetwork } from '../../e2e/local/netns.ts';

const announcerScript = new URL('./portico-l2-announcer.ts', import.meta.url).pathname;

/** What `publishLoadBalancerIP` creates. */
export interface LoadBalancerIPService {
  readonly ip: string;
  /** Defaults to `web`. */
  readonly name?: string;
  /** Defaults to 80. */
  readonly port?: number;
}

/**
 * Creates a LoadBalancer Service in `default` and writes `ip` into its status, as the
 * loadbalancer controller would, so the announcers see an IP to announce without running it.
 */
export async function publishLoadBalancerIP(core: CoreV1Api, service: LoadBalancerIPService): Promise<void> {
  const { ip, name = 'web', port = 80 } = service;
  await core.createNamespacedService({
    namespace: 'default',
    body: { metadata: { name }, spec: { type: 'LoadBalancer', ports: [{ port }] } },
  });
  const created = await core.readNamespacedService({ namespace: 'default', name });
  await core.replaceNamespacedServiceStatus({
    namespace: 'default',
    name,
    body: { ...created, status: { loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } } },
  });
}

/** The Node object name of a dataplane node. */
export function l2NodeName(node: NodeNetwork): string {
  return `node-${node.index}`;
}

/**
 * Adds `nodeCount` Ready nodes (namespaces and Node objects) and client 0 to the dataplane's LAN;
 * `lbPool` is routed onto the LAN so the client resolves its addresses with ARP.
 */
export async function addAnnouncementLan(
  dataplane: NetnsDataplane,
  core: CoreV1Api,
  nodeCount: number,
  lbPool: string,
): Promise<ClientNetwork> {
  for (let index = 0; index < nodeCount; index++) {
    const node = await dataplane.addNode(index);
    await core.createNode({
      body: {
        metadata: { name: l2NodeName(node) },
        status: {
          conditions: [{ type: 'Ready', status: 'True' }],
          addresses: [{ type: 'InternalIP', address: node.lanAddress }],
        },
      },
    });
  }
  const client = await dataplane.addClient(0);
  await dataplane.ip.inNamespace(client.namespace, ['route', 'add', lbPool, 'dev', 'lan0']);
  return client;
}

/** Starts `program` and resolves once it printed READY; rejects if it exits first. */
export function startUntilReady(
  program: string,
  args: readonly string[],
  what: string,
): Promise<ChildProcess> {
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

/** Starts `node`'s announcer process (leases in `default`) and resolves once it is READY. */
export function startAnnouncer(kubeconfigPath: string, node: NodeNetwork): Promise<ChildProcess> {
  return startUntilReady(
    process.execPath,
    [
      announcerScript,
      `--node-name=${l2NodeName(node)}`,
      `--kubeconfig=${kubeconfigPath}`,
      '--lease-namespace=default',
      `--netns=${node.namespace}`,
      '--log-level=warn',
    ],
    `announcer of ${l2NodeName(node)}`,
  );
}

/** Nodes whose LAN interface carries `ip` now. */
export async function lanCarriers(dataplane: NetnsDataplane, ip: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of dataplane.nodes) {
    const out = await dataplane.ip.inNamespace(node.namespace, ['-j', 'addr', 'show', 'dev', 'lan0']);
    const links = JSON.parse(out) as { addr_info?: { local?: string }[] }[];
    if (links.some((link) => (link.addr_info ?? []).some((info) => info.local === ip)))
      found.push(l2NodeName(node));
  }
  return found;
}

/** The MAC of `node`'s LAN interface, lower case. */
export async function lanMac(dataplane: NetnsDataplane, node: NodeNetwork): Promise<string> {
  const out = await dataplane.ip.inNamespace(node.namespace, ['-j', 'link', 'show', 'dev', 'lan0']);
  return ((JSON.parse(out) as { address: string }[])[0]?.address ?? '').toLowerCase();
}
