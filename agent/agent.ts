/**
 * The node agent process: informers feeding the change tracker, the sync runner driving one
 * proxier per IP family, and around each successful sync the health, metrics and conntrack work
 * kube-proxy does after `syncProxyRules`.
 */
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeConfig, V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { LABEL_TOPOLOGY_ZONE } from '../api/labels.ts';
import { Informer } from '../controllers/runtime/informer.ts';
import { errorFields, type Logger } from '../controllers/runtime/logging.ts';
import { renderMetrics } from '../controllers/runtime/metrics.ts';
import { runConntrackDeletions } from './conntrack-runner.ts';
import type { AgentConfig } from './flags.ts';
import { ProxyHealth, parseBindAddress, startProxyHealthServer } from './healthcheck/proxy-health.ts';
import {
  type ServiceHealth,
  ServiceHealthServers,
  serviceHealthChecks,
} from './healthcheck/service-health.ts';
import {
  type CommandRunner,
  commandRunner,
  type IptablesBackend,
  IptablesProxier,
} from './iptables/proxier.ts';
import { DEFAULT_IPTABLES_RENDER_OPTIONS } from './iptables/render.ts';
import { IpvsProxier } from './ipvs/proxier.ts';
import { DEFAULT_IPVS_RENDER_OPTIONS } from './ipvs/render.ts';
import { type AgentMetrics, agentMetrics, recordRuleCounts, triggerTimeOf } from './metrics.ts';
import { NftablesProxier } from './nftables/proxier.ts';
import { DEFAULT_NFTABLES_RENDER_OPTIONS } from './nftables/render.ts';
import type { Proxier, RenderedRuleset, SyncScope } from './proxier.ts';
import { staleUdpConntrackEntries } from './state/conntrack.ts';
import { ipFamilyOf } from './state/ip.ts';
import { ChangeTracker } from './state/tracker.ts';
import type { DesiredState, IPFamily, NodeInfo } from './state/types.ts';
import { SyncRunner } from './sync-runner.ts';

/** A proxier as the agent drives it: the common contract plus reading back what the kernel holds. */
export interface AgentProxier extends Proxier<RenderedRuleset> {
  /** Per-service objects in the kernel now; a full sync deletes those no longer wanted. */
  existingObjects(): Promise<Set<string>>;
  /** Ends work the proxier runs between syncs, if any. */
  stop?(): void;
}

/** The iptables proxier under the name the agent's contract uses for "what the kernel holds". */
class AgentIptablesProxier extends IptablesProxier implements AgentProxier {
  existingObjects(): Promise<Set<string>> {
    return this.existingServiceChains();
  }
}

/**
 * Builds the proxier of `config.mode` for one family. The seam for the proxy modes. `ipvs` must
 * already be resolved against the kernel (`resolveProxyMode`): here it means IPVS is there.
 * `hooks.onBackgroundError` receives failures of work between syncs (IPVS drain checks),
 * `hooks.onWarning` what a sync worked around (an unsupported IPVS scheduler annotation).
 */
export function createProxier(
  config: AgentConfig,
  family: IPFamily,
  run: CommandRunner,
  backend: IptablesBackend,
  hooks: {
    readonly onBackgroundError?: (error: unknown) => void;
    readonly onWarning?: (message: string, fields: Readonly<Record<string, string>>) => void;
  } = {},
): AgentProxier {
  const common = {
    clusterCIDRs: config.clusterCIDRs,
    nodePortAddresses: config.nodePortAddresses,
    masqueradeAll: config.masqueradeAll,
  };
  switch (config.mode) {
    case 'iptables':
      return new AgentIptablesProxier({
        family,
        backend,
        run,
        render: { ...DEFAULT_IPTABLES_RENDER_OPTIONS, ...common },
      });
    case 'nftables':
      return new NftablesProxier({ family, run, render: { ...DEFAULT_NFTABLES_RENDER_OPTIONS, ...common } });
    case 'ipvs':
      return new IpvsProxier({
        family,
        run,
        render: { ...DEFAULT_IPVS_RENDER_OPTIONS, ...common, defaultScheduler: config.ipvsScheduler },
        onDrainError: hooks.onBackgroundError ?? (() => undefined),
        ...(hooks.onWarning === undefined ? {} : { onWarning: hooks.onWarning }),
      });
  }
}

/**
 * Picks the iptables variant the host already uses, as kube-proxy does: rules in the other
 * variant would still filter packets but be invisible to `iptables -L`. Legacy only when it holds
 * rules and nf_tables holds none; otherwise the system default.
 */
export async function detectIptablesBackend(run: CommandRunner): Promise<IptablesBackend> {
  const ruleCount = async (binary: string) => {
    const result = await run(binary, []).catch(() => null);
    if (result === null || result.code !== 0) return 0;
    return result.stdout.split('\n').filter((line) => line.startsWith('-A ')).length;
  };
  const legacy = await ruleCount('iptables-legacy-save');
  if (legacy === 0) return 'default';
  return (await ruleCount('iptables-nft-save')) === 0 ? 'legacy' : 'default';
}

/** Node facts from the Node object. */
export function nodeInfoOf(name: string, node: V1Node | undefined): NodeInfo {
  return {
    name,
    zone: node?.metadata?.labels?.[LABEL_TOPOLOGY_ZONE] ?? '',
    addresses: (node?.status?.addresses ?? [])
      .filter((address) => address.type === 'InternalIP' || address.type === 'ExternalIP')
      .map((address) => address.address),
  };
}

/** False for a node on its way out, which `/healthz` reports so balancers drain it first. */
function nodeEligible(node: V1Node | undefined): boolean {
  if (node?.metadata?.deletionTimestamp !== undefined) return false;
  return !(node?.spec?.taints ?? []).some((taint) => taint.key === 'ToBeDeletedByClusterAutoscaler');
}

/** Options of {@link NodeAgent.start}. */
export interface NodeAgentOptions {
  readonly config: AgentConfig;
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** Runs iptables and conntrack; defaults to this process's network namespace. */
  readonly run?: CommandRunner;
}

/** One running agent. */
export class NodeAgent {
  readonly #config: AgentConfig;
  readonly #logger: Logger;
  readonly #run: CommandRunner;
  readonly #backend: IptablesBackend;
  readonly #tracker: ChangeTracker;
  readonly #runner: SyncRunner;
  readonly #metrics: AgentMetrics = agentMetrics();
  readonly #health: ProxyHealth;
  readonly #serviceHealth: ServiceHealthServers;
  readonly #proxiers = new Map<IPFamily, AgentProxier>();
  readonly #owned = new Map<IPFamily, ReadonlySet<string>>();
  readonly #previous = new Map<IPFamily, DesiredState>();
  /**
   * Families whose kernel state may differ from the last ruleset's `ownedObjects` (a failed apply,
   * or objects removed behind the agent's back): their next full sync reads the kernel back.
   */
  readonly #untrusted = new Set<IPFamily>();
  /** Trigger times of slice changes not yet applied, by `namespace/name` of the slice. */
  readonly #pendingTriggerTimes = new Map<string, number>();
  readonly #services: Informer<V1Service>;
  readonly #slices: Informer<V1EndpointSlice>;
  readonly #nodes: Informer<V1Node>;
  readonly #startedAt = Date.now();
  #canaryTimer: NodeJS.Timeout | undefined;
  #healthzServer: Server | undefined;
  #metricsServer: Server | undefined;
  #healthzPort = 0;
  #metricsPort = 0;

  private constructor(options: NodeAgentOptions, backend: IptablesBackend) {
    const { config, kubeConfig } = options;
    this.#config = config;
    this.#logger = options.logger;
    this.#run = options.run ?? commandRunner();
    this.#backend = backend;
    this.#tracker = new ChangeTracker({
      node: nodeInfoOf(config.hostname, undefined),
      proxyName: config.serviceProxyName,
    });
    this.#health = new ProxyHealth(2 * config.syncPeriodMs);
    this.#serviceHealth = new ServiceHealthServers(
      '',
      () => this.#health.healthy,
      (health: ServiceHealth, error: Error) =>
        this.#logger.warn('cannot open the health check node port', {
          service: `${health.namespace}/${health.name}`,
          port: health.port,
          error: error.message,
        }),
    );
    this.#ensureProxier('IPv4');
    this.#runner = new SyncRunner({
      minSyncPeriodMs: config.minSyncPeriodMs,
      syncPeriodMs: config.syncPeriodMs,
      sync: (request) => this.#sync(request.full),
      onError: (error) => {
        this.#metrics.syncFailures.inc();
        this.#logger.error('sync failed; retrying with a full sync', errorFields(error));
      },
    });
    // The same exclusions as kube-proxy's informer factory: other proxies' and headless objects.
    const labelSelector = `!service.kubernetes.io/headless${
      config.serviceProxyName === ''
        ? ',!service.kubernetes.io/service-proxy-name'
        : `,service.kubernetes.io/service-proxy-name=${config.serviceProxyName}`
    }`;
    const logger = this.#logger;
    this.#services = new Informer<V1Service>({ kubeConfig, logger, path: '/api/v1/services', labelSelector });
    this.#slices = new Informer<V1EndpointSlice>({
      kubeConfig,
      logger,
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      labelSelector,
    });
    this.#nodes = new Informer<V1Node>({
      kubeConfig,
      logger,
      path: '/api/v1/nodes',
      fieldSelector: `metadata.name=${config.hostname}`,
    });
    this.#wireInformers();
  }

  /**
   * Starts the health and metrics servers, the informers and the sync loop. Resolves once the
   * servers listen; the first sync follows when the Service and EndpointSlice caches have synced.
   */
  static async start(options: NodeAgentOptions): Promise<NodeAgent> {
    const run = options.run ?? commandRunner();
    const backend = options.config.mode === 'iptables' ? await detectIptablesBackend(run) : 'default';
    const agent = new NodeAgent({ ...options, run }, backend);
    try {
      await agent.#startServers();
    } catch (error) {
      await agent.stop();
      throw error;
    }
    agent.#services.start();
    agent.#slices.start();
    agent.#nodes.start();
    agent.#services.waitForSync().then(
      () => agent.#runner.servicesSynced(),
      () => undefined,
    );
    agent.#slices.waitForSync().then(
      () => agent.#runner.endpointSlicesSynced(),
      () => undefined,
    );
    agent.#canaryTimer = setInterval(() => agent.#checkCanary(), options.config.syncPeriodMs);
    return agent;
  }

  /** Port of the `/healthz` server (useful when bound to port 0). */
  get healthzPort(): number {
    return this.#healthzPort;
  }

  /** Port of the `/metrics` server. */
  get metricsPort(): number {
    return this.#metricsPort;
  }

  /** Stops syncing, watching and serving; the rules stay, as kube-proxy leaves them on exit. */
  async stop(): Promise<void> {
    clearInterval(this.#canaryTimer);
    this.#runner.stop();
    await this.#runner.whenIdle();
    for (const proxier of this.#proxiers.values()) proxier.stop?.();
    await Promise.all([this.#services.stop(), this.#slices.stop(), this.#nodes.stop()]);
    await this.#serviceHealth.close();
    for (const server of [this.#healthzServer, this.#metricsServer]) {
      if (server === undefined) continue;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  #ensureProxier(family: IPFamily): void {
    if (this.#proxiers.has(family)) return;
    this.#proxiers.set(
      family,
      createProxier(this.#config, family, this.#run, this.#backend, {
        onBackgroundError: (error) =>
          this.#logger.warn('IPVS drain check failed', { family, ...errorFields(error) }),
        onWarning: (message, fields) => this.#logger.warn(message, { family, ...fields }),
      }),
    );
  }

  #wireInformers(): void {
    const serviceChanged = () => {
      this.#metrics.serviceChanges.inc();
      this.#health.queued();
      this.#runner.requestSync();
    };
    this.#services.addEventHandler({
      onAdd: (service) => {
        this.#tracker.updateService(service);
        serviceChanged();
      },
      onUpdate: (_old, service) => {
        this.#tracker.updateService(service);
        serviceChanged();
      },
      onDelete: (service) => {
        this.#tracker.deleteService(service.metadata?.namespace ?? 'default', service.metadata?.name ?? '');
        serviceChanged();
      },
    });
    const sliceChanged = (slice: V1EndpointSlice) => {
      const triggerTime = triggerTimeOf(slice.metadata?.annotations);
      // As kube-proxy: changes from before the agent started are not latency of this agent.
      if (triggerTime !== null && triggerTime >= this.#startedAt)
        this.#pendingTriggerTimes.set(`${slice.metadata?.namespace}/${slice.metadata?.name}`, triggerTime);
      this.#metrics.endpointChanges.inc();
      this.#health.queued();
      this.#runner.requestSync();
    };
    this.#slices.addEventHandler({
      onAdd: (slice) => {
        this.#tracker.updateEndpointSlice(slice);
        sliceChanged(slice);
      },
      onUpdate: (_old, slice) => {
        this.#tracker.updateEndpointSlice(slice);
        sliceChanged(slice);
      },
      onDelete: (slice) => {
        this.#tracker.deleteEndpointSlice(slice);
        sliceChanged(slice);
      },
    });
    const nodeChanged = (node: V1Node | undefined) => {
      this.#health.setNodeEligible(nodeEligible(node));
      const info = nodeInfoOf(this.#config.hostname, node);
      const before = this.#tracker.node;
      if (info.addresses.some((address) => ipFamilyOf(address) === 'IPv6')) this.#ensureProxier('IPv6');
      this.#tracker.setNode(info);
      if (before !== this.#tracker.node) this.#runner.requestFullSync();
    };
    this.#nodes.addEventHandler({
      onAdd: nodeChanged,
      onUpdate: (_old, node) => nodeChanged(node),
      onDelete: () => nodeChanged(undefined),
    });
  }

  async #startServers(): Promise<void> {
    const healthz = await startProxyHealthServer(
      this.#health,
      parseBindAddress(this.#config.healthzBindAddress, '--healthz-bind-address'),
    );
    this.#healthzServer = healthz.server;
    this.#healthzPort = healthz.port;
    const bind = parseBindAddress(this.#config.metricsBindAddress, '--metrics-bind-address');
    const metrics = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0];
      if (path === '/metrics') {
        renderMetrics().then(
          ({ contentType, body }) => response.writeHead(200, { 'Content-Type': contentType }).end(body),
          () => response.writeHead(500).end(),
        );
      } else if (path === '/proxyMode') {
        response.writeHead(200, { 'Content-Type': 'text/plain' }).end(this.#config.mode);
      } else if (path === '/healthz') {
        response.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      } else {
        response.writeHead(404).end();
      }
    });
    this.#metricsServer = metrics;
    await new Promise<void>((resolve, reject) => {
      metrics.once('error', reject);
      metrics.listen(bind.port, bind.host === '' ? undefined : bind.host, () => resolve());
    });
    this.#metricsPort = (metrics.address() as AddressInfo).port;
  }

  #checkCanary(): void {
    // Before the first sync there is nothing to lose; the first sync is full anyway.
    if (this.#owned.size === 0) return;
    const checks = [...this.#proxiers.values()].map((proxier) => proxier.lostState());
    Promise.all(checks).then(
      (lost) => {
        if (!lost.includes(true)) return;
        for (const family of this.#proxiers.keys()) this.#untrusted.add(family);
        this.#logger.warn('Portico chains were removed by someone else; running a full sync');
        this.#runner.requestFullSync();
      },
      (error: unknown) => this.#logger.warn('canary check failed', errorFields(error)),
    );
  }

  async #sync(full: boolean): Promise<void> {
    const started = performance.now();
    const queuedBefore = Date.now();
    const triggerTimes = [...this.#pendingTriggerTimes];
    this.#pendingTriggerTimes.clear();
    const snapshot = this.#tracker.snapshot();
    const node = this.#tracker.node;
    try {
      for (const [family, proxier] of this.#proxiers) {
        const owned = this.#owned.get(family);
        let scope: SyncScope;
        if (owned === undefined || (full && this.#untrusted.has(family))) {
          // At start, after a failure or a flush the kernel may hold anything: read it back.
          const existing = new Set([...(owned ?? []), ...(await proxier.existingObjects())]);
          scope = { changedServices: 'all', existingObjects: existing };
        } else if (full) {
          // A periodic resync: the last applied ruleset says what the kernel holds, so no listing.
          scope = { changedServices: 'all', existingObjects: owned };
        } else {
          scope = { changedServices: snapshot.changedServices, existingObjects: owned };
        }
        const ruleset = proxier.render(snapshot.desired[family], node, scope);
        await proxier.apply(ruleset);
        this.#owned.set(family, ruleset.ownedObjects);
        if (ruleset.full) this.#untrusted.delete(family);
        if ('filter' in ruleset && 'nat' in ruleset)
          recordRuleCounts(
            this.#metrics,
            family,
            ruleset as RenderedRuleset & { filter: string; nat: string },
          );
      }
    } catch (error) {
      // The changes are retried by the next (full) sync; their latency counts from the same trigger.
      for (const family of this.#proxiers.keys()) this.#untrusted.add(family);
      for (const [key, time] of triggerTimes)
        if (!this.#pendingTriggerTimes.has(key)) this.#pendingTriggerTimes.set(key, time);
      throw error;
    }
    const finished = Date.now();
    this.#metrics.syncDuration
      .labels({ sync: full ? 'full' : 'partial' })
      .observe((performance.now() - started) / 1000);
    this.#metrics.lastSyncTimestamp.set(finished / 1000);
    for (const [, time] of triggerTimes)
      this.#metrics.networkProgrammingDuration.observe(Math.max(0, finished - time) / 1000);
    this.#health.updated(queuedBefore);
    const ports = [...this.#proxiers.keys()].flatMap((family) => snapshot.desired[family].servicePorts);
    await this.#serviceHealth.sync(serviceHealthChecks(ports));
    await this.#cleanUpConntrack(snapshot.desired);
    this.#logger.debug('synced', { full, services: snapshot.changedServices.size });
  }

  /**
   * Deletes the UDP conntrack entries the sync made stale. Not on the first sync: without a
   * previous state every UDP Service would look new and every live UDP flow would be dropped.
   */
  async #cleanUpConntrack(desired: Readonly<Record<IPFamily, DesiredState>>): Promise<void> {
    for (const family of this.#proxiers.keys()) {
      const previous = this.#previous.get(family);
      this.#previous.set(family, desired[family]);
      if (previous === undefined) continue;
      const deletions = staleUdpConntrackEntries(previous, desired[family]);
      if (deletions.length === 0) continue;
      const result = await runConntrackDeletions(this.#run, deletions);
      for (const message of result.errors) this.#logger.warn('conntrack cleanup failed', { error: message });
      this.#logger.debug('deleted stale UDP conntrack entries', { family, deleted: result.deleted });
    }
  }
}

/** `--cleanup`: removes every Portico rule of the mode, both families. */
export async function cleanupRules(config: AgentConfig, run: CommandRunner = commandRunner()): Promise<void> {
  const backend = config.mode === 'iptables' ? await detectIptablesBackend(run) : 'default';
  for (const family of ['IPv4', 'IPv6'] as const) await createProxier(config, family, run, backend).cleanup();
}
