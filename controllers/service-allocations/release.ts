/**
 * The release half of Service allocation: a controller that gives ClusterIPs and node ports back
 * to their allocators once a Service no longer holds them, because it was deleted or because a
 * stored update dropped them (type change, secondary IP removed, node port cleared).
 *
 * Admission webhooks do not see deletions reliably (a namespace deletion, garbage collection,
 * a replica that was down), and releasing while an update is still in flight could free a value
 * the stored Service still uses; watching what the API server actually stored avoids both. The
 * repair loop reclaims whatever this controller misses (a delete while no leader ran).
 */
import type { V1Service } from '@kubernetes/client-node';
import type { ConfigMapAllocationStore } from '../../allocators/configmap-store.ts';
import type { ServiceAllocators } from '../../webhooks/services/allocators.ts';
import {
  CLUSTER_IP_INDEX,
  heldClusterIPs,
  heldNodePorts,
  NODE_PORT_INDEX,
} from '../../webhooks/services/held.ts';
import type { ReconcileResult, Reconciler } from '../runtime/controller.ts';
import { objectKey } from '../runtime/informer.ts';
import type { Logger } from '../runtime/logging.ts';
import { getOrCreateCounter, METRIC_PREFIX } from '../runtime/metrics.ts';

/** The parts of a Services informer the controller reads. */
export interface ServiceCache {
  /** Cached Services filed under `value` in index `indexName`. */
  byIndex(indexName: string, value: string): V1Service[];
}

/** Values a Service stopped holding, waiting to be released. */
interface PendingRelease {
  readonly clusterIPs: Set<string>;
  readonly nodePorts: Set<number>;
  /** When the oldest of them was seen dropped. */
  readonly since: number;
}

/** Options of {@link ServiceAllocationReleaser}. */
export interface ServiceAllocationReleaserOptions {
  /** The allocators to release into. */
  readonly allocators: ServiceAllocators;
  /** The Services informer cache, indexed with `serviceIndexers`. */
  readonly services: ServiceCache;
  /** Controller logger. */
  readonly logger: Logger;
  /**
   * Pending releases older than this are dropped instead of carried out. It must be shorter
   * than the repair loop's leak grace period: after that the repair loop may already have freed
   * the value and an allocator handed it to a Service whose create is still in flight, which a
   * late release would then take away. Dropped values are the repair loop's to reclaim.
   */
  readonly maxPendingAgeMs: number;
  /** Bound on Services with pending releases (default 100,000); beyond it the oldest are dropped. */
  readonly maxPendingServices?: number;
  /** Time source, for tests. */
  readonly now?: () => number;
}

const releasedValues = () =>
  getOrCreateCounter({
    name: `${METRIC_PREFIX}service_allocation_released_total`,
    help: 'ClusterIPs and node ports released after their Service was deleted or stopped holding them.',
    labelNames: ['allocator'],
  });

const skippedReleases = () =>
  getOrCreateCounter({
    name: `${METRIC_PREFIX}service_allocation_release_skipped_total`,
    help: 'Releases not carried out, by reason: held (another Service holds the value now) or expired (left to the repair loop).',
    labelNames: ['reason'],
  });

/**
 * Records what Services stop holding (from informer delete and update events) and releases it
 * in a keyed reconcile. Before releasing, the current Services cache is consulted: a value some
 * Service holds now (the same name re-created, or another Service) is not released. Releases are
 * idempotent, so a retried reconcile is harmless.
 */
export class ServiceAllocationReleaser implements Reconciler {
  readonly #options: ServiceAllocationReleaserOptions;
  readonly #pending = new Map<string, PendingRelease>();
  readonly #now: () => number;

  /** @param options allocators, cache, logger and limits */
  constructor(options: ServiceAllocationReleaserOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Number of Services with values waiting to be released. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Informer delete: everything the Service held is to be released. Returns the key to enqueue. */
  serviceDeleted(service: V1Service): string | undefined {
    return this.#record(objectKey(service), heldClusterIPs(service), heldNodePorts(service));
  }

  /** Informer update: what the old version held and the new one does not. Returns the key to enqueue, if any. */
  serviceUpdated(old: V1Service, next: V1Service): string | undefined {
    const ips = new Set(heldClusterIPs(next));
    const ports = new Set(heldNodePorts(next));
    return this.#record(
      objectKey(next),
      heldClusterIPs(old).filter((ip) => !ips.has(ip)),
      heldNodePorts(old).filter((port) => !ports.has(port)),
    );
  }

  #record(key: string, clusterIPs: readonly string[], nodePorts: readonly number[]): string | undefined {
    if (clusterIPs.length === 0 && nodePorts.length === 0) return undefined;
    let entry = this.#pending.get(key);
    if (entry === undefined) {
      entry = { clusterIPs: new Set(), nodePorts: new Set(), since: this.#now() };
      this.#pending.set(key, entry);
      const limit = this.#options.maxPendingServices ?? 100_000;
      if (this.#pending.size > limit) {
        const oldest = this.#pending.keys().next().value!;
        this.#pending.delete(oldest);
        skippedReleases().labels({ reason: 'expired' }).inc();
      }
    }
    for (const ip of clusterIPs) entry.clusterIPs.add(ip);
    for (const port of nodePorts) entry.nodePorts.add(port);
    return key;
  }

  /** Releases what the Service `key` stopped holding, unless some Service holds it now. */
  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const entry = this.#pending.get(key);
    if (entry === undefined) return undefined;
    const logger = this.#options.logger.child({ key });
    if (this.#now() - entry.since > this.#options.maxPendingAgeMs) {
      this.#pending.delete(key);
      skippedReleases().labels({ reason: 'expired' }).inc();
      logger.info('release expired; leaving the values to the repair loop', {
        clusterIPs: [...entry.clusterIPs],
        nodePorts: [...entry.nodePorts],
      });
      return undefined;
    }
    const { services, allocators } = this.#options;
    const releases = new Map<
      ConfigMapAllocationStore<string> | ConfigMapAllocationStore<number>,
      { label: string; values: Array<string | number> }
    >();
    const add = (
      store: ConfigMapAllocationStore<string> | ConfigMapAllocationStore<number>,
      label: string,
      value: string | number,
    ) => {
      const group = releases.get(store) ?? { label, values: [] };
      group.values.push(value);
      releases.set(store, group);
    };
    const ips = [...entry.clusterIPs];
    const ports = [...entry.nodePorts];
    for (const ip of ips) {
      if (services.byIndex(CLUSTER_IP_INDEX, ip).length > 0) {
        skippedReleases().labels({ reason: 'held' }).inc();
        continue;
      }
      const family = ip.includes(':') ? 'IPv6' : 'IPv4';
      const handle = allocators.clusterIP(family);
      // An address of a family no longer configured was never ours to track.
      if (handle !== undefined) add(handle.store, family, ip);
    }
    for (const port of ports) {
      if (services.byIndex(NODE_PORT_INDEX, String(port)).length > 0) {
        skippedReleases().labels({ reason: 'held' }).inc();
        continue;
      }
      add(allocators.nodePorts.store, 'NodePort', port);
    }
    await Promise.all(
      [...releases].map(async ([store, { label, values }]) => {
        await (store as ConfigMapAllocationStore<string | number>).transact(
          values.map((value) => ({ op: 'release' as const, value })),
        );
        releasedValues().labels({ allocator: label }).inc(values.length);
      }),
    );
    // Values recorded while this ran stay pending for the next round.
    for (const ip of ips) entry.clusterIPs.delete(ip);
    for (const port of ports) entry.nodePorts.delete(port);
    if (entry.clusterIPs.size === 0 && entry.nodePorts.size === 0) this.#pending.delete(key);
    else return { requeueAfter: 1 };
    logger.debug('released', { clusterIPs: ips, nodePorts: ports });
    return undefined;
  }
}
