/**
 * The local implementation of {@link ScenarioDriver}: the local cluster in dataplane mode brought
 * up the way `npm start` does (API server, LocalCluster, then Portico's controller-manager with its
 * webhooks and one agent per node namespace), driven with the real `kubectl`. The in-cluster client
 * is a pod (its network namespace runs the commands), the outside client the LAN client namespace.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../controllers/runtime/logging.ts';
import { type ApiServer, startApiServer } from '../apiserver/index.ts';
import { mustRun, runCommand } from '../kind/cluster.ts';
import { LocalCluster } from '../local/cluster.ts';
import { defaultIpPath, lanInterface, newRunId } from '../local/netns.ts';
import type { NodeAgents } from '../local/node-agents.ts';
import { readinessOverrideAnnotation } from '../local/pod-status.ts';
import { LOCAL_L2_POOL_CIDR, type Portico, startPortico } from '../local/portico.ts';
import { KubeRest } from '../local/rest.ts';
import { ensureKubectl } from '../tools/helm.ts';
import {
  CURL_STATUS_WRITE_OUT,
  type OutsideResponse,
  type ProxyMode,
  parseCurlOutput,
  SCENARIO_NAMESPACE,
  type ScenarioDriver,
  type ScenarioNode,
  scenarioKubectlArgs,
} from './driver.ts';

/** The first three octets of {@link LOCAL_L2_POOL_CIDR}, a /24. */
const l2PoolNetwork = LOCAL_L2_POOL_CIDR.slice(0, LOCAL_L2_POOL_CIDR.lastIndexOf('.'));

/**
 * Addresses LoadBalancerIPPools may hand out here: inside {@link LOCAL_L2_POOL_CIDR}, which the LAN
 * client reaches on-link (so the agents' L2 announcement answers its ARP), away from the network's
 * first and last addresses.
 */
export const LOCAL_LOAD_BALANCER_RANGE = `${l2PoolNetwork}.10-${l2PoolNetwork}.250`;

const CLIENT_POD = 'client';

/** Options of {@link LocalScenarioDriver.start}. */
export interface LocalScenarioDriverOptions {
  readonly mode: ProxyMode;
  /** Names the run's network namespaces (`portico-<runId>-…`); default a fresh random id. */
  readonly runId?: string;
  /** Log level of Portico's components (their logs go to files under the data directory). */
  readonly logLevel?: string;
}

/** Scenario operations on a local cluster of its own, for one proxy mode; {@link stop} removes it all. */
export class LocalScenarioDriver implements ScenarioDriver {
  readonly driverName = 'local' as const;
  readonly mode: ProxyMode;
  /** Certificates, the API server's data and the components' logs. */
  readonly #dataDir: string;
  readonly cluster: LocalCluster;
  readonly #server: ApiServer;
  readonly #rest: KubeRest;
  readonly #portico: Portico;
  readonly #kubectlPath: string;
  /** The mode each node's agent reported running. */
  readonly #runningModes = new Map<string, string>();

  private constructor(parts: {
    mode: ProxyMode;
    dataDir: string;
    server: ApiServer;
    cluster: LocalCluster;
    rest: KubeRest;
    portico: Portico;
    kubectlPath: string;
  }) {
    this.mode = parts.mode;
    this.#dataDir = parts.dataDir;
    this.#server = parts.server;
    this.cluster = parts.cluster;
    this.#rest = parts.rest;
    this.#portico = parts.portico;
    this.#kubectlPath = parts.kubectlPath;
  }

  /**
   * Brings up the API server, the local cluster with its network namespaces and Portico (which
   * installs its CRD first, as the chart does). On failure everything started is stopped again.
   */
  static async start(options: LocalScenarioDriverOptions): Promise<LocalScenarioDriver> {
    const runId = options.runId ?? newRunId();
    const logLevel = options.logLevel ?? 'info';
    const dataDir = await mkdtemp(join(tmpdir(), `portico-scenarios-${runId}-`));
    const undo: (() => Promise<void>)[] = [() => rm(dataDir, { recursive: true, force: true })];
    const unwind = async (): Promise<void> => {
      for (const step of undo) await step().catch(() => undefined);
    };
    try {
      const kubectlPath = await ensureKubectl();
      const server = await startApiServer({ dataDir: join(dataDir, 'apiserver') });
      undo.unshift(() => server.close());
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromFile(server.kubeconfigPath);
      const cluster = await LocalCluster.start({
        kubeConfig,
        logger: createLogger({ level: 'silent' }),
        dataplane: true,
        runId,
      });
      undo.unshift(() => cluster.stop());
      const rest = new KubeRest(kubeConfig);
      undo.unshift(async () => rest.close());
      await rest.createUnlessExists('/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: SCENARIO_NAMESPACE },
      });
      const portico = await startPortico({
        cluster,
        rest,
        apiServerUrl: server.url,
        kubeconfigPath: server.kubeconfigPath,
        dataDir,
        proxyMode: options.mode,
        logLevel,
      });
      return new LocalScenarioDriver({
        mode: options.mode,
        dataDir,
        server,
        cluster,
        rest,
        portico,
        kubectlPath,
      });
    } catch (error) {
      await unwind();
      throw error;
    }
  }

  /** Where Portico's components wrote their logs (worth reading when a scenario fails). */
  get logFiles(): readonly string[] {
    return this.#portico.logFiles;
  }

  /** The agent of every node (for local-only checks such as killing an announcing node's agent). */
  get agents(): NodeAgents {
    const agents = this.#portico.agents;
    if (agents === undefined) throw new Error('the local driver runs the dataplane, so agents exist');
    return agents;
  }

  /** Stops Portico, the cluster (its namespaces and processes) and the API server; removes the data. */
  async stop(): Promise<void> {
    try {
      await this.#portico.stop();
      this.#rest.close();
    } finally {
      // The namespaces and the server go even when stopping a component failed.
      try {
        await this.cluster.stop();
      } finally {
        await this.#server.close();
        await rm(this.#dataDir, { recursive: true, force: true });
      }
    }
  }

  /** Runs kubectl against this cluster; a non-zero exit throws with kubectl's message. */
  async kubectl(args: readonly string[], input?: string): Promise<string> {
    return mustRun(this.#kubectlPath, ['--kubeconfig', this.#server.kubeconfigPath, ...args], {
      input,
      echo: false,
      timeoutMs: 180_000,
    });
  }

  async apply(manifests: string, namespace = SCENARIO_NAMESPACE): Promise<void> {
    await this.kubectl(scenarioKubectlArgs.apply(namespace), manifests);
  }

  async delete(manifests: string, namespace = SCENARIO_NAMESPACE): Promise<void> {
    await this.kubectl(scenarioKubectlArgs.delete(namespace), manifests);
  }

  async waitFor(
    resource: string,
    condition: string,
    timeoutSeconds = 60,
    namespace = SCENARIO_NAMESPACE,
  ): Promise<void> {
    await this.kubectl(scenarioKubectlArgs.wait(resource, condition, timeoutSeconds, namespace));
  }

  async read(resource: string, jsonPath: string, namespace = SCENARIO_NAMESPACE): Promise<string> {
    return this.kubectl(scenarioKubectlArgs.read(resource, jsonPath, namespace));
  }

  /** Creates the client pod (its containers serve nothing the scenarios use) and waits until it is Ready. */
  async ensureClient(): Promise<void> {
    await this.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: CLIENT_POD, labels: { app: 'portico-e2e-client' } },
        spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'client', image: 'curl' }] },
      }),
    );
    await this.waitFor(`pod/${CLIENT_POD}`, 'condition=Ready');
  }

  /** Runs the command in the client pod's network namespace (host binaries, pod network). */
  async execInClient(command: readonly string[]): Promise<string> {
    const key = `${SCENARIO_NAMESPACE}/${CLIENT_POD}`;
    const pod = this.cluster.dataplane?.pods.find((candidate) => candidate.key === key);
    if (pod === undefined) throw new Error(`pod ${key} has no network namespace: call ensureClient() first`);
    return mustRun(defaultIpPath, ['netns', 'exec', pod.namespace, ...command], {
      echo: false,
      timeoutMs: 60_000,
    });
  }

  /** curl from the LAN client namespace, which reaches the nodes as an off-cluster machine would. */
  async fetchFromOutside(url: string, timeoutSeconds = 5): Promise<OutsideResponse> {
    const client = this.cluster.client;
    if (client === undefined) throw new Error('the local cluster has no LAN client');
    const result = await runCommand(
      defaultIpPath,
      [
        'netns',
        'exec',
        client.namespace,
        'curl',
        '-sS',
        '-m',
        String(timeoutSeconds),
        '-w',
        CURL_STATUS_WRITE_OUT,
        url,
      ],
      { echo: false, timeoutMs: (timeoutSeconds + 10) * 1000 },
    );
    return parseCurlOutput(result.stdout, result.code);
  }

  nodes(): Promise<ScenarioNode[]> {
    return Promise.resolve(this.cluster.nodes.map((node) => ({ name: node.name, address: node.internalIp })));
  }

  /** Lists the rules of the mode the node's agent reports running (`--mode ipvs` may have fallen back). */
  async nodeRules(node: string): Promise<string> {
    const identity = this.cluster.nodes.find((candidate) => candidate.name === node);
    const network = this.cluster.dataplane?.nodes.find((candidate) => candidate.index === identity?.index);
    if (network === undefined) throw new Error(`no node ${JSON.stringify(node)} in this cluster`);
    const execInNode = ['netns', 'exec', network.namespace];
    const inNodeOptions = { echo: false, timeoutMs: 30_000 };
    let mode = this.#runningModes.get(node);
    if (mode === undefined) {
      const running = await runCommand(
        defaultIpPath,
        [...execInNode, 'curl', '-sS', '-m', '2', 'http://127.0.0.1:10249/proxyMode'],
        inNodeOptions,
      );
      // An agent settles its mode once at start; ask again only while it has not answered.
      if (running.code === 0) this.#runningModes.set(node, running.stdout.trim());
      mode = running.code === 0 ? running.stdout.trim() : this.mode;
    }
    const command: Record<string, string[]> = {
      iptables: ['iptables-save'],
      nftables: ['nft', 'list', 'ruleset'],
      ipvs: ['ipvsadm', '-Ln'],
    };
    return mustRun(defaultIpPath, [...execInNode, ...(command[mode] ?? ['iptables-save'])], inNodeOptions);
  }

  loadBalancerRange(): Promise<string> {
    return Promise.resolve(LOCAL_LOAD_BALANCER_RANGE);
  }

  /**
   * The MAC addresses (lower case, distinct) that answered ARP requests for `ip` sent by the LAN
   * client: the optional check of loadbalancer.ts (`ArpProbingDriver`) that exactly one node
   * announces a LoadBalancer IP.
   */
  async arpResponders(ip: string): Promise<string[]> {
    const client = this.cluster.client;
    if (client === undefined) throw new Error('the local cluster has no LAN client');
    // arping exits non-zero when nobody answered; the replies it printed are what counts.
    const { stdout } = await runCommand(
      defaultIpPath,
      ['netns', 'exec', client.namespace, 'arping', '-c', '3', '-w', '3', '-I', lanInterface, ip],
      { echo: false, timeoutMs: 20_000 },
    );
    const macs = [...stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]+)\]/g)].map((match) =>
      (match[1] ?? '').toLowerCase(),
    );
    return [...new Set(macs)];
  }

  /**
   * The pod server answers every path, so a probe cannot be made to fail through it; the local
   * kubelet's readiness override annotation gives the same result (the probe result ANDed with it).
   */
  async setPodReadiness(pod: string, ready: boolean, namespace = SCENARIO_NAMESPACE): Promise<void> {
    await this.kubectl([
      'annotate',
      '-n',
      namespace,
      '--overwrite',
      `pod/${pod}`,
      ready ? `${readinessOverrideAnnotation}-` : `${readinessOverrideAnnotation}=false`,
    ]);
  }
}
