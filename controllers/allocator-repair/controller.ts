/**
 * The allocator repair loop: at start and every interval, rebuild what each allocation bitmap
 * should hold from the Services in the informer cache and write it with compare-and-swap
 * (upstream's ipallocator and portallocator repair controllers, for Portico's ConfigMaps).
 */
import type { KubernetesObject, V1Service } from '@kubernetes/client-node';
import type { ConfigMapAllocationStore } from '../../allocators/configmap-store.ts';
import {
  applyRepair,
  clusterIPAllocationsOf,
  nodePortAllocationsOf,
  type RepairPlan,
  type ServiceAllocations,
} from '../../allocators/repair.ts';
import type { ServiceAllocators } from '../../webhooks/services/allocators.ts';
import type { EventType } from '../runtime/events.ts';
import { errorFields, type Logger } from '../runtime/logging.ts';
import { getOrCreateCounter, getOrCreateGauge, METRIC_PREFIX } from '../runtime/metrics.ts';

/** Upstream's repair interval. */
export const DEFAULT_REPAIR_INTERVAL_MS = 3 * 60_000;

/** Controller name, also the Event source. */
export const ALLOCATOR_REPAIR_CONTROLLER = 'allocator-repair';

/** The parts of a Services informer the loop reads. */
export interface RepairServiceCache {
  /** Every cached Service. */
  list(): V1Service[];
  /** The cached Service `namespace/name`. */
  get(key: string): V1Service | undefined;
  /** True once the cache holds a complete list. */
  hasSynced(): boolean;
}

/** Where Warning Events go; EventRecorder fits. */
export interface RepairEventSink {
  /** Records an Event on `obj`; never rejects. */
  event(obj: KubernetesObject, type: EventType, reason: string, message: string): Promise<void>;
}

/** Options of {@link AllocatorRepairController}. */
export interface AllocatorRepairOptions {
  /** The allocators to repair. */
  readonly allocators: ServiceAllocators;
  /** The Services informer cache. */
  readonly services: RepairServiceCache;
  /** Event recorder for problems found on Services. */
  readonly events: RepairEventSink;
  /** Controller logger. */
  readonly logger: Logger;
  /** Time between passes (`--allocator-repair-interval`). */
  readonly intervalMs: number;
  /**
   * How long a value set in a bitmap must stay unused by every Service before it is freed. It
   * covers creates in flight (allocated, not yet stored) and a cache that lags behind.
   * Default: two intervals, so a leak is freed on the third pass that sees it, as upstream does.
   */
  readonly leakGracePeriodMs?: number;
  /** Time source, for tests. */
  readonly now?: () => number;
}

/** The outcome of one pass over one allocator. */
export interface RepairPassResult {
  /** `IPv4`, `IPv6` or `NodePort`. */
  readonly allocator: string;
  /** The plan that was written (or that found nothing to write). */
  readonly plan: RepairPlan<string | number>;
}

const allocatorValues = () =>
  getOrCreateGauge({
    name: `${METRIC_PREFIX}allocator_values`,
    help: 'Values of each allocator after the last repair pass, by state (used, free).',
    labelNames: ['allocator', 'state'],
  });

const leaksReclaimed = () =>
  getOrCreateCounter({
    name: `${METRIC_PREFIX}allocator_leaks_reclaimed_total`,
    help: 'Allocated values no Service used for the whole grace period, freed by the repair loop.',
    labelNames: ['allocator'],
  });

const conflictsFound = () =>
  getOrCreateCounter({
    name: `${METRIC_PREFIX}allocator_conflicts_found_total`,
    help: 'Problems the repair loop reported on Services, by reason (duplicate, out of range, invalid, not allocated).',
    labelNames: ['allocator', 'reason'],
  });

const repairFailures = () =>
  getOrCreateCounter({
    name: `${METRIC_PREFIX}allocator_repair_failures_total`,
    help: 'Repair passes over an allocator that failed (and are retried at the next interval).',
    labelNames: ['allocator'],
  });

/**
 * Runs repair passes on the leader (it is a manager controller). Each pass, per allocator:
 * plan with `allocators/repair.ts` inside a compare-and-swap on the ConfigMap, write the
 * rebuilt bitmap, then report. A Service whose value is outside the range or shared with
 * another Service gets a Warning Event naming the other; nothing is taken from either. A value
 * the bitmap lacked although a Service uses it is marked (Warning `…NotAllocated`).
 */
export class AllocatorRepairController {
  /** Controller name for the manager's logs. */
  readonly name = ALLOCATOR_REPAIR_CONTROLLER;
  readonly #options: AllocatorRepairOptions;
  readonly #seenUnused = new Map<string, ReadonlyMap<number, number>>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  /** @param options allocators, cache, events, interval */
  constructor(options: AllocatorRepairOptions) {
    this.#options = options;
  }

  /** Runs a pass now and then every interval. */
  run(): void {
    const tick = () => {
      if (this.#stopped) return;
      this.#running = this.repairOnce()
        .then(() => undefined)
        .finally(() => {
          this.#running = undefined;
          if (!this.#stopped) this.#timer = setTimeout(tick, this.#options.intervalMs);
        });
    };
    tick();
  }

  /** Stops scheduling passes and waits up to `timeoutMs` for the current one. */
  async stop(timeoutMs = 10_000): Promise<boolean> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const running = this.#running;
    if (running === undefined) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const finished = await Promise.race([running.then(() => true), timedOut]);
    clearTimeout(timer);
    return finished;
  }

  /**
   * One pass over every allocator. An allocator whose pass fails is logged and counted; the
   * others still run. Resolves with the plans that were written.
   */
  async repairOnce(): Promise<RepairPassResult[]> {
    const { services, allocators, logger } = this.#options;
    if (!services.hasSynced()) {
      // An incomplete list would make every value look leaked (and start their grace clocks).
      logger.info('services cache not synced; skipping repair pass');
      return [];
    }
    const all = services.list();
    const clusterIPs = clusterIPAllocationsOf(all);
    const nodePorts = nodePortAllocationsOf(all);
    const results: RepairPassResult[] = [];
    for (const { label, handle } of allocators.all()) {
      const holders = label === 'NodePort' ? nodePorts : clusterIPs;
      try {
        const plan = await this.#repair(
          label,
          handle.store as ConfigMapAllocationStore<string | number>,
          holders,
        );
        results.push({ allocator: label, plan });
      } catch (error) {
        repairFailures().labels({ allocator: label }).inc();
        logger.error('repair pass failed', { allocator: label, ...errorFields(error) });
      }
    }
    return results;
  }

  async #repair(
    label: string,
    store: ConfigMapAllocationStore<string | number>,
    holders: readonly ServiceAllocations<string | number>[],
  ): Promise<RepairPlan<string | number>> {
    const { logger, intervalMs } = this.#options;
    const now = (this.#options.now ?? Date.now)();
    const grace = this.#options.leakGracePeriodMs ?? 2 * intervalMs;
    const plan = await applyRepair(store, holders, now, this.#seenUnused.get(label) ?? new Map(), grace);
    this.#seenUnused.set(label, plan.seenUnusedSince);
    const used = plan.bitmap.count;
    allocatorValues().labels({ allocator: label, state: 'used' }).set(used);
    allocatorValues()
      .labels({ allocator: label, state: 'free' })
      .set(plan.bitmap.size - used);
    if (plan.leaksFreed.length > 0) {
      leaksReclaimed().labels({ allocator: label }).inc(plan.leaksFreed.length);
      logger.info('freed leaked values', { allocator: label, values: plan.leaksFreed });
    }
    if (plan.leaksPending.length > 0) {
      logger.info('values may have leaked; keeping them for the grace period', {
        allocator: label,
        count: plan.leaksPending.length,
      });
    }
    for (const problem of [...plan.problems, ...plan.marked]) {
      conflictsFound().labels({ allocator: label, reason: problem.reason }).inc();
      const service = this.#options.services.get(`${problem.namespace}/${problem.name}`);
      if (service !== undefined)
        void this.#options.events.event(service, 'Warning', problem.reason, problem.message);
      logger.warn(problem.message, {
        allocator: label,
        service: `${problem.namespace}/${problem.name}`,
        reason: problem.reason,
      });
    }
    return plan;
  }
}
