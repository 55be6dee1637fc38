import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, constants } from 'node:fs/promises';
import { promisify } from 'node:util';
import {
  ipv4CidrBounds,
  type NodeCidrPlan,
  nodeCidrCapacity,
  nodeCidrOf,
  numberToIpv4,
  parseIpv4Cidr,
} from './ipam.ts';

const execFileAsync = promisify(execFile);

/** Where iproute2 lives on the Debian images we run on; overridable for other hosts. */
export const defaultIpPath = '/usr/sbin/ip';

/** Every network namespace the local cluster creates starts with this, so stale ones can be found. */
export const namespacePrefix = 'portico-';

/**
 * Address plan of the local dataplane, all inside the benchmarking range 198.18.0.0/15.
 *
 * - Node `i` owns the `i`-th subnet of the pod range ({@link defaultNodeCidrPlan}: `198.18.i.0/24`);
 *   `.1` of it is the gateway the node answers on every pod veth, so pods get `.2`–`.254`.
 * - The LAN joining nodes and clients is `198.18.255.0/24`: inside the pod range (so the whole of
 *   198.19.0.0/16 stays free for Service ClusterIPs) but outside every node's pod CIDR, so a proxy
 *   that detects local traffic by node pod CIDR masquerades client traffic as it must.
 * - Node `i` is `198.18.255.(i+1)` on the LAN; clients take addresses from `198.18.255.254` down.
 */
export const addressPlan = {
  podRange: '198.18.0.0/16',
  lanCidr: '198.18.255.0/24',
  lanPrefixLength: 24,
  serviceRange: '198.19.0.0/16',
} as const;

/** The pod range and per-node mask when none are given: node `i` owns `198.18.i.0/24`. */
export const defaultNodeCidrPlan: NodeCidrPlan = { podCidr: addressPlan.podRange, nodeCidrMaskSize: 24 };

/** Node indexes 0..249 keep node LAN addresses clear of the client addresses at the top of the LAN. */
export const maxNodes = 250;

const maxClients = 4;

/** The pod CIDR of node `index` under `plan` (by default `198.18.<index>.0/24`). */
export function nodePodCidr(index: number, plan: NodeCidrPlan = defaultNodeCidrPlan): string {
  assertNodeIndex(index);
  return nodeCidrOf(plan, index);
}

/** The gateway address a node answers on each of its pods' veths (`.1` of its pod CIDR). */
export function nodePodGateway(index: number, plan: NodeCidrPlan = defaultNodeCidrPlan): string {
  return podCidrGateway(nodePodCidr(index, plan));
}

/** The gateway address of a node's pod CIDR: its first address after the network address. */
export function podCidrGateway(podCidr: string): string {
  return numberToIpv4(parseIpv4Cidr(podCidr).network + 1);
}

/**
 * The pod CIDRs of nodes 0 to `nodeCount - 1` under `plan`, after checking that they fit. Every
 * node takes a LAN address as its InternalIP, so at most {@link maxNodes} nodes in either mode. In
 * dataplane mode the addresses are configured and routed in the run's namespaces, so the range
 * must stay inside 198.18.0.0/16 and no node's pod CIDR may overlap the LAN 198.18.255.0/24; in
 * control-plane mode nothing is configured or routed and any IPv4 range goes (for example
 * 10.0.0.0/8 with /16 per node). Errors name the `npm start` flag to change.
 */
export function planNodePodCidrs(nodeCount: number, plan: NodeCidrPlan, dataplane: boolean): string[] {
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > maxNodes) {
    throw new Error(
      `--nodes: Invalid value: ${nodeCount}: must be an integer from 1 to ${maxNodes} (node InternalIPs come from the LAN ${addressPlan.lanCidr})`,
    );
  }
  const capacity = nodeCidrCapacity(plan);
  let usable = capacity;
  if (dataplane) {
    const range = ipv4CidrBounds(plan.podCidr, '--pod-cidr');
    const allowed = ipv4CidrBounds(addressPlan.podRange);
    if (range.first < allowed.first || range.last > allowed.last) {
      throw new Error(
        `--pod-cidr: Invalid value: "${plan.podCidr}": the dataplane configures and routes pod addresses, so the range must be inside ${addressPlan.podRange} (or run with --no-dataplane, which allows any IPv4 range)`,
      );
    }
    // Node subnets are handed out from the bottom of the range, so the usable ones end at the LAN.
    const lanFirst = ipv4CidrBounds(addressPlan.lanCidr).first;
    const subnetSize = 2 ** (32 - plan.nodeCidrMaskSize);
    usable = Math.min(capacity, Math.max(0, Math.floor((lanFirst - range.first) / subnetSize)));
  }
  if (nodeCount > usable) {
    const lanNote = dataplane && usable < capacity ? ` below the LAN ${addressPlan.lanCidr}` : '';
    throw new Error(
      `--nodes: Invalid value: ${nodeCount}: --pod-cidr ${plan.podCidr} with --node-cidr-mask-size ${plan.nodeCidrMaskSize} holds ${usable} node pod CIDRs${lanNote}; use a wider --pod-cidr or a larger --node-cidr-mask-size`,
    );
  }
  return Array.from({ length: nodeCount }, (_, index) => nodeCidrOf(plan, index));
}

/** The node's address on the LAN, used as its InternalIP. */
export function nodeLanAddress(index: number): string {
  assertNodeIndex(index);
  return `198.18.255.${index + 1}`;
}

/** The LAN address of client `index` (0-based), counted down from the top of the LAN. */
export function clientLanAddress(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= maxClients) {
    throw new RangeError(
      `client index: Invalid value: ${index}: must be an integer from 0 to ${maxClients - 1}`,
    );
  }
  return `198.18.255.${254 - index}`;
}

function assertNodeIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= maxNodes) {
    throw new RangeError(`node index: Invalid value: ${index}: must be an integer from 0 to ${maxNodes - 1}`);
  }
}

/**
 * Runs iproute2. Every call names its target namespace explicitly (`-n`), so nothing lands in the
 * host's own namespace by omission.
 */
export class IpCommand {
  readonly ipPath: string;

  constructor(ipPath: string = defaultIpPath) {
    this.ipPath = ipPath;
  }

  /** Runs `ip <args>` and returns stdout; rejects with ip's stderr in the message. */
  async run(args: readonly string[]): Promise<string> {
    try {
      const { stdout } = await execFileAsync(this.ipPath, args, { encoding: 'utf8' });
      return stdout;
    } catch (error) {
      const stderr = (error as { stderr?: unknown }).stderr;
      const detail = typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : String(error);
      throw new Error(`ip ${args.join(' ')}: ${detail}`);
    }
  }

  /**
   * Runs several commands in one namespace with a single `ip -batch` process, which matters when
   * a burst of pods each needs a handful of link, address and route changes.
   */
  batch(namespace: string, commands: readonly (readonly string[])[]): Promise<void> {
    const script = `${commands.map((command) => command.join(' ')).join('\n')}\n`;
    return new Promise((resolve, reject) => {
      const child = spawn(this.ipPath, ['-n', namespace, '-batch', '-'], {
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        stderr += chunk;
      });
      child.once('error', reject);
      child.once('exit', (code) => {
        if (code === 0) resolve();
        else
          reject(new Error(`ip -n ${namespace} -batch: ${stderr.trim() || `exit code ${code}`}\n${script}`));
      });
      child.stdin.end(script);
    });
  }

  /** Runs `ip -n <namespace> <args>`. */
  inNamespace(namespace: string, args: readonly string[]): Promise<string> {
    return this.run(['-n', namespace, ...args]);
  }

  /** Runs a program inside a namespace (`ip netns exec`) and returns its stdout. */
  async exec(
    namespace: string,
    program: string,
    args: readonly string[],
    timeoutMs = 15_000,
  ): Promise<{ stdout: string; stderr: string }> {
    try {
      return await execFileAsync(this.ipPath, ['netns', 'exec', namespace, program, ...args], {
        encoding: 'utf8',
        timeout: timeoutMs,
      });
    } catch (error) {
      const stderr = (error as { stderr?: unknown }).stderr;
      const detail = typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : String(error);
      throw new Error(`${program} in ${namespace}: ${detail}`);
    }
  }

  /** Names of all network namespaces starting with `prefix`. */
  async listNamespaces(prefix: string): Promise<string[]> {
    const out = await this.run(['netns', 'list']);
    return out
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[0] ?? '')
      .filter((name) => name.startsWith(prefix));
  }

  /** Process ids running inside a namespace. */
  async namespacePids(namespace: string): Promise<number[]> {
    const out = await this.run(['netns', 'pids', namespace]);
    return out
      .split('\n')
      .map((line) => Number.parseInt(line.trim(), 10))
      .filter((pid) => Number.isInteger(pid) && pid > 0);
  }
}

/**
 * Checks that the dataplane can run here: root, and an executable `ip`. The message says what is
 * missing and how to run without the dataplane instead.
 */
export async function checkDataplanePrerequisites(ipPath: string = defaultIpPath): Promise<void> {
  const problems: string[] = [];
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    problems.push('it must run as root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)');
  }
  try {
    await access(ipPath, constants.X_OK);
  } catch {
    problems.push(`${ipPath} (iproute2) is missing: apt-get install iproute2`);
  }
  if (problems.length > 0) {
    throw new Error(
      `the local dataplane cannot start: ${problems.join('; ')}; use --no-dataplane to run without it`,
    );
  }
}

/**
 * Checks that a run id keeps the names we derive from it short and recognisable: the namespace
 * names embed it, and `cleanupStale` matches on it.
 */
function assertRunId(runId: string): void {
  if (!/^[a-z0-9]{1,12}$/.test(runId)) {
    throw new Error(`runId: Invalid value: "${runId}": must be 1-12 lowercase letters or digits`);
  }
}

/** `portico-<run>-`: every namespace of one run starts with it. */
export function runNamespacePrefix(runId: string): string {
  assertRunId(runId);
  return `${namespacePrefix}${runId}-`;
}

/** A short random run id, so parallel runs (and other engineers' tests) never share names. */
export function newRunId(): string {
  return createHash('sha256')
    .update(`${process.pid}-${Date.now()}-${Math.random()}`)
    .digest('hex')
    .slice(0, 8);
}

/** A node of the dataplane: its namespace and addresses. */
export interface NodeNetwork {
  readonly index: number;
  readonly namespace: string;
  readonly lanAddress: string;
  readonly podCidr: string;
  readonly podGateway: string;
}

/** A pod's namespace, wired to its node. */
export interface PodNetwork {
  readonly key: string;
  readonly namespace: string;
  readonly nodeIndex: number;
  readonly podIp: string;
  /** The node-side end of the pod's veth (the pod side is always `eth0`). */
  readonly hostVeth: string;
}

/** A client namespace on the LAN, able to reach every pod CIDR through the node that owns it. */
export interface ClientNetwork {
  readonly index: number;
  readonly namespace: string;
  readonly lanAddress: string;
}

/** A container port a pod server listens on. */
export interface PodServerPort {
  readonly name?: string;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
}

/** A running pod server process; `stop` sends SIGTERM and waits for it to exit. */
export interface PodServerProcess {
  readonly pid: number;
  stop(graceMs?: number): Promise<void>;
}

const lanNamespaceSuffix = 'lan';
const lanBridge = 'br0';
/** The name of every node's and client's link to the LAN, inside its own namespace. */
export const lanInterface = 'lan0';
const podInterface = 'eth0';
const podServerScript = new URL('./pod-server.ts', import.meta.url).pathname;

/** Keeps namespace names readable and limited to what `ip netns` accepts. */
function sanitizeKey(key: string): string {
  const cleaned = key.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 8);
  return `${cleaned.slice(0, 60)}-${hash}`;
}

/** Interface names must fit IFNAMSIZ (15 characters); a hash keeps them unique within a node. */
export function hostVethName(podKey: string): string {
  return `vp${createHash('sha256').update(podKey).digest('hex').slice(0, 12)}`;
}

/**
 * The network namespaces of one local-cluster run: a LAN namespace holding a bridge, one namespace
 * per node (forwarding on, routes to its pods and to the other nodes' pod CIDRs), one per pod, and
 * client namespaces. Nothing is created in the host's namespace: veths are created with both ends
 * placed directly in run namespaces.
 */
export class NetnsDataplane {
  readonly runId: string;
  readonly prefix: string;
  readonly lanNamespace: string;
  readonly ip: IpCommand;
  readonly #nodes = new Map<number, NodeNetwork>();
  readonly #clients = new Map<number, ClientNetwork>();
  readonly #pods = new Map<string, PodNetwork>();
  #lanCreated = false;

  constructor(options: { runId: string; ipPath?: string }) {
    this.runId = options.runId;
    this.prefix = runNamespacePrefix(options.runId);
    this.lanNamespace = `${this.prefix}${lanNamespaceSuffix}`;
    this.ip = new IpCommand(options.ipPath);
  }

  /** The nodes created so far, by index. */
  get nodes(): readonly NodeNetwork[] {
    return [...this.#nodes.values()].sort((a, b) => a.index - b.index);
  }

  /** The pods created so far. */
  get pods(): readonly PodNetwork[] {
    return [...this.#pods.values()];
  }

  async #createNamespace(name: string): Promise<void> {
    await this.ip.run(['netns', 'add', name]);
    await this.ip.inNamespace(name, ['link', 'set', 'lo', 'up']);
  }

  async #ensureLan(): Promise<void> {
    if (this.#lanCreated) return;
    await this.#createNamespace(this.lanNamespace);
    this.#lanCreated = true;
    await this.ip.inNamespace(this.lanNamespace, ['link', 'add', lanBridge, 'type', 'bridge']);
    await this.ip.inNamespace(this.lanNamespace, ['link', 'set', lanBridge, 'up']);
  }

  /**
   * Creates a veth whose one end joins the LAN bridge and whose other end is {@link lanInterface}
   * in `namespace`.
   */
  async #attachToLan(namespace: string, bridgePort: string, address: string): Promise<void> {
    await this.ip.inNamespace(this.lanNamespace, [
      'link',
      'add',
      bridgePort,
      'type',
      'veth',
      'peer',
      'name',
      lanInterface,
      'netns',
      namespace,
    ]);
    await this.ip.inNamespace(this.lanNamespace, ['link', 'set', bridgePort, 'master', lanBridge, 'up']);
    await this.ip.inNamespace(namespace, [
      'addr',
      'add',
      `${address}/${addressPlan.lanPrefixLength}`,
      'dev',
      lanInterface,
    ]);
    await this.ip.inNamespace(namespace, ['link', 'set', lanInterface, 'up']);
  }

  /**
   * Creates node `index` owning `podCidr` (see {@link planNodePodCidrs}): its namespace with
   * forwarding on (inside that namespace only), a link to the LAN, and routes both ways between it
   * and every existing node and client.
   */
  async addNode(index: number, podCidr: string = nodePodCidr(index)): Promise<NodeNetwork> {
    if (this.#nodes.has(index)) throw new Error(`node ${index} already exists in run ${this.runId}`);
    const node: NodeNetwork = {
      index,
      namespace: `${this.prefix}node-${index}`,
      lanAddress: nodeLanAddress(index),
      podCidr,
      podGateway: podCidrGateway(podCidr),
    };
    await this.#ensureLan();
    await this.#createNamespace(node.namespace);
    this.#nodes.set(index, node);
    await this.ip.exec(node.namespace, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    // IPv6 may be disabled on the host kernel; the IPv4 dataplane works without it.
    await this.ip
      .exec(node.namespace, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.forwarding=1'])
      .catch(() => undefined);
    await this.#attachToLan(node.namespace, `node${index}`, node.lanAddress);
    for (const other of this.#nodes.values()) {
      if (other.index === index) continue;
      await this.ip.inNamespace(node.namespace, ['route', 'add', other.podCidr, 'via', other.lanAddress]);
      await this.ip.inNamespace(other.namespace, ['route', 'add', node.podCidr, 'via', node.lanAddress]);
    }
    for (const client of this.#clients.values()) {
      await this.ip.inNamespace(client.namespace, ['route', 'add', node.podCidr, 'via', node.lanAddress]);
    }
    return node;
  }

  /**
   * Creates client `index` on the LAN with a route to every node's pod CIDR via that node; its
   * default route goes to the first node so Service addresses (routed nowhere else) reach a proxy.
   */
  async addClient(index = 0): Promise<ClientNetwork> {
    if (this.#clients.has(index)) throw new Error(`client ${index} already exists in run ${this.runId}`);
    const client: ClientNetwork = {
      index,
      namespace: `${this.prefix}client-${index}`,
      lanAddress: clientLanAddress(index),
    };
    await this.#ensureLan();
    await this.#createNamespace(client.namespace);
    this.#clients.set(index, client);
    await this.#attachToLan(client.namespace, `client${index}`, client.lanAddress);
    const nodes = this.nodes;
    for (const node of nodes) {
      await this.ip.inNamespace(client.namespace, ['route', 'add', node.podCidr, 'via', node.lanAddress]);
    }
    const first = nodes[0];
    if (first !== undefined) {
      await this.ip.inNamespace(client.namespace, ['route', 'add', 'default', 'via', first.lanAddress]);
    }
    return client;
  }

  /**
   * Creates the namespace of pod `key` on node `nodeIndex` with address `podIp`/32. The pod reaches
   * everything through the node's gateway address on its veth; the node reaches the pod by a /32
   * route on that veth, which is also what the other nodes' routes to this pod CIDR end in.
   */
  async addPod(nodeIndex: number, key: string, podIp: string): Promise<PodNetwork> {
    const node = this.#nodes.get(nodeIndex);
    if (node === undefined) throw new Error(`node ${nodeIndex} does not exist in run ${this.runId}`);
    if (this.#pods.has(key)) throw new Error(`pod ${key} already has a network namespace`);
    const pod: PodNetwork = {
      key,
      namespace: `${this.prefix}pod-${sanitizeKey(key)}`,
      nodeIndex,
      podIp,
      hostVeth: hostVethName(key),
    };
    await this.ip.run(['netns', 'add', pod.namespace]);
    this.#pods.set(key, pod);
    await this.ip.batch(pod.namespace, [
      ['link', 'set', 'lo', 'up'],
      ['link', 'add', podInterface, 'type', 'veth', 'peer', 'name', pod.hostVeth, 'netns', node.namespace],
      ['addr', 'add', `${podIp}/32`, 'dev', podInterface],
      ['link', 'set', podInterface, 'up'],
      ['route', 'add', node.podGateway, 'dev', podInterface, 'scope', 'link'],
      ['route', 'add', 'default', 'via', node.podGateway],
    ]);
    await this.ip.batch(node.namespace, [
      ['addr', 'add', `${node.podGateway}/32`, 'dev', pod.hostVeth],
      ['link', 'set', pod.hostVeth, 'up'],
      ['route', 'add', `${podIp}/32`, 'dev', pod.hostVeth],
    ]);
    return pod;
  }

  /** Stops the pod's processes and deletes its namespace (the veth goes with it). */
  async removePod(key: string, graceMs = 2_000): Promise<void> {
    const pod = this.#pods.get(key);
    if (pod === undefined) return;
    await removeNamespace(this.ip, pod.namespace, graceMs);
    this.#pods.delete(key);
  }

  /**
   * Starts the pod workload server inside the pod's namespace and resolves once it listens on every
   * port. Node 24 (`process.execPath`) runs it, so the machine's older `node` never matters.
   */
  startPodServer(key: string, podName: string, ports: readonly PodServerPort[]): Promise<PodServerProcess> {
    const pod = this.#pods.get(key);
    if (pod === undefined) throw new Error(`pod ${key} has no network namespace`);
    const child = spawn(
      this.ip.ipPath,
      ['netns', 'exec', pod.namespace, process.execPath, podServerScript, podName, JSON.stringify(ports)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return waitForReady(child, podName);
  }

  /** Removes every namespace of this run, the processes inside first. */
  async destroy(graceMs = 2_000): Promise<void> {
    await cleanupStale(this.prefix, { ipPath: this.ip.ipPath, graceMs });
    this.#pods.clear();
    this.#nodes.clear();
    this.#clients.clear();
    this.#lanCreated = false;
  }
}

function waitForReady(child: ChildProcess, podName: string): Promise<PodServerProcess> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
    const handle: PodServerProcess = {
      pid: child.pid ?? -1,
      async stop(graceMs = 2_000) {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      },
    };
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes('READY\n')) resolve(handle);
    });
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      reject(new Error(`pod server ${podName} exited (${signal ?? code}) before serving: ${stderr.trim()}`));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function signalPids(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone between listing and signalling.
    }
  }
}

/**
 * Stops every process inside `namespace` (SIGTERM, then SIGKILL after `graceMs`) and deletes it.
 * A namespace with live processes would outlive `ip netns del`, keeping its veths alive.
 */
async function removeNamespace(ip: IpCommand, namespace: string, graceMs: number): Promise<void> {
  let pids = await ip.namespacePids(namespace).catch(() => []);
  if (pids.length > 0) {
    signalPids(pids, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (pids.length > 0 && Date.now() < deadline) {
      await sleep(50);
      pids = await ip.namespacePids(namespace).catch(() => []);
    }
    if (pids.length > 0) {
      signalPids(pids, 'SIGKILL');
      for (let attempt = 0; attempt < 40 && pids.length > 0; attempt++) {
        await sleep(50);
        pids = await ip.namespacePids(namespace).catch(() => []);
      }
    }
  }
  await ip.run(['netns', 'del', namespace]).catch((error: unknown) => {
    if (!String(error).includes('No such file')) throw error;
  });
}

/**
 * Removes whatever runs matching `prefix` left behind: their processes and namespaces (and with
 * them every veth, since we only ever create veths with both ends in our namespaces). Refuses
 * prefixes that don't start with `portico-`, so it can never touch someone else's namespaces.
 * Returns the namespaces removed.
 */
export async function cleanupStale(
  prefix: string,
  options: { ipPath?: string; graceMs?: number } = {},
): Promise<string[]> {
  if (!prefix.startsWith(namespacePrefix)) {
    throw new Error(`prefix: Invalid value: "${prefix}": must start with "${namespacePrefix}"`);
  }
  const ip = new IpCommand(options.ipPath);
  const namespaces = await ip.listNamespaces(prefix);
  await Promise.all(namespaces.map((namespace) => removeNamespace(ip, namespace, options.graceMs ?? 2_000)));
  return namespaces;
}
