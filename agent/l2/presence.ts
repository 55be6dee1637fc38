/**
 * Which nodes' L2 announcers are alive, for giving an IP back to its preferred node. Node
 * readiness is not enough: a node stays Ready while its agent is dead (the SIGKILL failover
 * case), and handing an IP to a node nobody answers for would black-hole it until the handed
 * Lease expires, then again at every attempt.
 *
 * Every announcer renews a presence Lease of its own (`portico-l2-node-<hash>`, holder = node
 * name, label {@link L2_PRESENCE_LABEL}); every announcer watches those Leases and notes, by its
 * own clock, when it last saw each node renew. Each run of an agent writes a new incarnation
 * (annotation {@link L2_INCARNATION_ANNOTATION}), so a restarted agent is told apart from the one
 * an IP was last handed to. A released Lease (clean shutdown) counts as absent at once. There is no
 * election here, only one writer per Lease, so a restarted agent renews at once instead of
 * waiting out its predecessor's term as a leader election would.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { Informer } from '../../controllers/runtime/informer.ts';
import { apiStatusCode, describeError } from '../../controllers/runtime/kube.ts';
import type { Logger } from '../../controllers/runtime/logging.ts';

/** Label of presence Leases, so announcers watch those and not the per-IP ones renewed twice a second. */
export const L2_PRESENCE_LABEL = 'portico.dev/l2-presence';

/** Annotation naming the run of the agent that renews a presence Lease. */
export const L2_INCARNATION_ANNOTATION = 'portico.dev/l2-incarnation';

/** How often presence is renewed and how long it lasts unrenewed, in milliseconds. */
export interface PresenceTiming {
  leaseDurationMs: number;
  renewPeriodMs: number;
}

/**
 * Presence renews every 2 s and counts as gone 10 s after the last renewal seen. Giving an IP
 * back is not urgent, so the API server sees one write per node every two seconds, not more.
 */
export const DEFAULT_PRESENCE_TIMING: PresenceTiming = { leaseDurationMs: 10_000, renewPeriodMs: 2_000 };

/** The last renewal of a node's presence that this process saw. */
export interface PresenceSighting {
  /** Local time of the sighting. */
  readonly atMs: number;
  /** Which run of the node's agent renewed. */
  readonly incarnation: string;
}

/** What the announcer asks about other nodes' announcers. */
export interface NodePresence {
  /** The latest renewal of `node`'s presence seen; undefined when absent or released. */
  lastSeen(node: string): PresenceSighting | undefined;
  /** How long after the last renewal seen a node still counts as present. */
  readonly ttlMs: number;
}

/** The presence Lease name of a node: a hash, as node names may be longer than a Lease name allows with a prefix. */
export function l2PresenceLeaseName(nodeName: string): string {
  return `portico-l2-node-${createHash('sha256').update(nodeName).digest('hex').slice(0, 16)}`;
}

/** Options of {@link L2Presence}. */
export interface L2PresenceOptions {
  kubeConfig: KubeConfig;
  /** The namespace of the per-IP Leases. */
  namespace: string;
  nodeName: string;
  timing?: PresenceTiming;
  logger: Logger;
  /** Called after another node's presence changed (renewed, appeared, released). */
  onChange?: () => void;
}

interface Sighting extends PresenceSighting {
  readonly holder: string;
  readonly resourceVersion: string;
}

/** This node's presence Lease and the view of everyone's. */
export class L2Presence implements NodePresence {
  readonly ttlMs: number;
  readonly #options: L2PresenceOptions;
  readonly #timing: PresenceTiming;
  readonly #logger: Logger;
  readonly #api: CoordinationV1Api;
  readonly #informer: Informer<V1Lease>;
  readonly #leaseName: string;
  readonly #incarnation = randomBytes(8).toString('hex');
  /** By Lease name. */
  readonly #sightings = new Map<string, Sighting>();
  readonly #abort = new AbortController();
  #heartbeat: Promise<void> | undefined;

  constructor(options: L2PresenceOptions) {
    this.#options = options;
    this.#timing = options.timing ?? DEFAULT_PRESENCE_TIMING;
    this.ttlMs = this.#timing.leaseDurationMs;
    this.#logger = options.logger.child({ component: 'l2-presence', node: options.nodeName });
    this.#api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.#leaseName = l2PresenceLeaseName(options.nodeName);
    this.#informer = new Informer<V1Lease>({
      kubeConfig: options.kubeConfig,
      path: `/apis/coordination.k8s.io/v1/namespaces/${options.namespace}/leases`,
      name: 'l2-presence-leases',
      labelSelector: `${L2_PRESENCE_LABEL}=true`,
      logger: this.#logger,
    });
    this.#informer.addEventHandler({
      onAdd: (lease) => this.#see(lease),
      onUpdate: (_old, lease) => this.#see(lease),
      onDelete: (lease) => {
        this.#sightings.delete(lease.metadata?.name ?? '');
        this.#options.onChange?.();
      },
    });
  }

  /** Starts watching the others; resolves once the first list is in. */
  async watch(): Promise<void> {
    this.#informer.start();
    await this.#informer.waitForSync();
  }

  /**
   * Starts renewing this node's presence. Call it once this node campaigns for every IP it is
   * eligible for, so a node that sees the presence and hands it an IP finds a campaign to take it.
   */
  announce(): void {
    this.#heartbeat ??= this.#renewForever();
  }

  lastSeen(node: string): PresenceSighting | undefined {
    let latest: Sighting | undefined;
    for (const sighting of this.#sightings.values()) {
      if (sighting.holder === node && (latest === undefined || sighting.atMs > latest.atMs))
        latest = sighting;
    }
    return latest === undefined ? undefined : { atMs: latest.atMs, incarnation: latest.incarnation };
  }

  /** Releases this node's presence (others stop handing it IPs at once) and stops watching. */
  async stop(): Promise<void> {
    this.#abort.abort();
    if (this.#heartbeat !== undefined) {
      await this.#heartbeat;
      await this.#write('').catch((error: unknown) => {
        this.#logger.warn('could not release the presence Lease', { error: describeError(error) });
      });
    }
    await this.#informer.stop();
  }

  #see(lease: V1Lease): void {
    const name = lease.metadata?.name ?? '';
    const holder = lease.spec?.holderIdentity ?? '';
    const resourceVersion = lease.metadata?.resourceVersion ?? '';
    if (holder === '') {
      this.#sightings.delete(name);
    } else {
      // A relist re-delivers unchanged objects; only a new version is a renewal.
      if (this.#sightings.get(name)?.resourceVersion === resourceVersion) return;
      const incarnation = lease.metadata?.annotations?.[L2_INCARNATION_ANNOTATION] ?? holder;
      this.#sightings.set(name, { holder, incarnation, resourceVersion, atMs: Date.now() });
    }
    if (holder !== this.#options.nodeName) this.#options.onChange?.();
  }

  async #renewForever(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      await this.#write(this.#options.nodeName).catch((error: unknown) => {
        this.#logger.warn('could not renew the presence Lease', { error: describeError(error) });
      });
      await sleep(this.#timing.renewPeriodMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /** Writes the presence Lease with `holder` ('' releases it), creating it when absent. */
  async #write(holder: string): Promise<void> {
    const { namespace } = this.#options;
    const name = this.#leaseName;
    const now = new V1MicroTime();
    const spec = {
      holderIdentity: holder,
      leaseDurationSeconds: Math.ceil(this.#timing.leaseDurationMs / 1000),
      renewTime: now,
    };
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (apiStatusCode(error) !== 404 || holder === '') throw error;
      await this.#api.createNamespacedLease({
        namespace,
        body: {
          metadata: {
            name,
            namespace,
            labels: { [L2_PRESENCE_LABEL]: 'true' },
            annotations: { [L2_INCARNATION_ANNOTATION]: this.#incarnation },
          },
          spec: { ...spec, acquireTime: now },
        },
      });
      return;
    }
    const sameRun = lease.metadata?.annotations?.[L2_INCARNATION_ANNOTATION] === this.#incarnation;
    await this.#api.replaceNamespacedLease({
      name,
      namespace,
      body: {
        ...lease,
        metadata: {
          ...lease.metadata,
          labels: { ...lease.metadata?.labels, [L2_PRESENCE_LABEL]: 'true' },
          annotations: { ...lease.metadata?.annotations, [L2_INCARNATION_ANNOTATION]: this.#incarnation },
        },
        spec: { ...lease.spec, ...spec, acquireTime: sameRun ? (lease.spec?.acquireTime ?? now) : now },
      },
    });
  }
}
