/**
 * Runs `portico-agent` in every node namespace of a dataplane local cluster, as the DaemonSet
 * would run it on every node: the agent's rules, health check ports and /healthz live in the
 * node's namespace. The API server listens on 127.0.0.1 of the host namespace, which a node
 * namespace cannot reach; a relay in each node namespace forwards its own 127.0.0.1:<port>
 * through a unix socket to a forwarder in this process (see api-relay.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressPlan, IpCommand, lanInterface, type NodeNetwork } from './netns.ts';

const relayScript = new URL('./api-relay.ts', import.meta.url).pathname;
const agentScript = new URL('../../agent/portico-agent.ts', import.meta.url).pathname;

/** Options of {@link startNodeAgents}. */
export interface NodeAgentsOptions {
  /** The nodes (namespace and index); node `i` is named `node-<i>`. */
  readonly nodes: readonly NodeNetwork[];
  /** The API server's `https://127.0.0.1:<port>` URL. */
  readonly apiServerUrl: string;
  readonly kubeconfigPath: string;
  /** Flags added to every agent's command line. */
  readonly agentArgs?: readonly string[];
  /** Environment added to every agent's (L2 announcement is turned on this way, as in the chart). */
  readonly agentEnv?: Readonly<Record<string, string>>;
}

/** The agents and their plumbing; `stop` ends them all. */
export interface NodeAgents {
  /** Last lines of node `index`'s agent log, for failure messages. */
  log(index: number): Promise<string>;
  /** Stops the agent of node `index` (the relay stays, so an agent can be run there again). */
  stopAgent(index: number): Promise<void>;
  /** SIGKILLs the agent of node `index`, as a node or agent crash would, and waits until it is gone. */
  killAgent(index: number): Promise<void>;
  /** Stops the agent of node `index` and starts a new one with the same flags, as a pod restart would. */
  restartAgent(index: number): Promise<void>;
  /** Stops every agent and relay and removes the socket directory. */
  stop(): Promise<void>;
}

function waitForLine(child: ChildProcess, line: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no "${line}" within ${timeoutMs} ms`)), timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before "${line}"`));
    });
  });
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Routes the address plan's Service range onto the LAN, as a node with a default gateway would
 * route it (without a route, a packet to a Service address without endpoints fails the route
 * lookup before it reaches the agent's REJECT rule in FORWARD), and turns off ICMP error rate
 * limiting in the node: that REJECT answers with an ICMP error, and the kernel's per-peer limit
 * (about one a second after a small burst) would turn a test's quick retries into timeouts.
 */
async function prepareNode(ip: IpCommand, namespace: string): Promise<void> {
  await ip.inNamespace(namespace, ['route', 'replace', addressPlan.serviceRange, 'dev', lanInterface]);
  await ip.exec(namespace, 'sysctl', ['-q', '-w', 'net.ipv4.icmp_ratelimit=0']);
}

/** Starts a relay and an agent per node; resolves once every relay listens. */
export async function startNodeAgents(options: NodeAgentsOptions): Promise<NodeAgents> {
  const ip = new IpCommand();
  const api = new URL(options.apiServerUrl);
  const dir = await mkdtemp(join(tmpdir(), 'portico-agents-'));
  const socketPath = join(dir, 'api.sock');
  const forwarder: Server = createServer((client) => {
    const upstream = connect(Number(api.port), api.hostname);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => forwarder.listen(socketPath, resolve));
  const relays: ChildProcess[] = [];
  const agents = new Map<number, ChildProcess>();
  const spawnAgent = (node: NodeNetwork) => {
    const log = createWriteStream(join(dir, `agent-${node.index}.log`), { flags: 'a' });
    const agent = spawn(
      ip.ipPath,
      [
        'netns',
        'exec',
        node.namespace,
        process.execPath,
        agentScript,
        '--hostname-override',
        `node-${node.index}`,
        '--kubeconfig',
        options.kubeconfigPath,
        ...(options.agentArgs ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.agentEnv } },
    );
    agent.stdout.pipe(log);
    agent.stderr.pipe(log);
    agents.set(node.index, agent);
  };
  const stop = async () => {
    await Promise.all([...agents.values(), ...relays].map(terminate));
    forwarder.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const node of options.nodes) {
      await prepareNode(ip, node.namespace);
      const relay = spawn(
        ip.ipPath,
        ['netns', 'exec', node.namespace, process.execPath, relayScript, api.port, socketPath],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      relays.push(relay);
      await waitForLine(relay, 'READY', 10_000);
      spawnAgent(node);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    log: async (index) =>
      (await readFile(join(dir, `agent-${index}.log`), 'utf8').catch(() => ''))
        .split('\n')
        .slice(-20)
        .join('\n'),
    stopAgent: async (index) => {
      const agent = agents.get(index);
      if (agent !== undefined) await terminate(agent);
    },
    killAgent: async (index) => {
      const agent = agents.get(index);
      if (agent === undefined || agent.exitCode !== null || agent.signalCode !== null) return;
      const exited = new Promise((resolve) => agent.once('exit', resolve));
      agent.kill('SIGKILL');
      await exited;
    },
    restartAgent: async (index) => {
      const agent = agents.get(index);
      const node = options.nodes.find((candidate) => candidate.index === index);
      if (agent === undefined || node === undefined) throw new Error(`no agent runs on node-${index}`);
      await terminate(agent);
      spawnAgent(node);
    },
    stop,
  };
}
