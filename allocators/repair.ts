import type { V1Service } from '@kubernetes/client-node';
import { Bitmap } from './bitmap.ts';
import type { ConfigMapAllocationStore } from './configmap-store.ts';
import { parseIP } from './ip.ts';
import type { AllocationRange } from './range.ts';

/** The values one Service holds from an allocator: its ClusterIPs, or its node ports. */
export interface ServiceAllocations<T extends string | number> {
  /** Service namespace. */
  readonly namespace: string;
  /** Service name. */
  readonly name: string;
  /** ClusterIPs (any family; the plan picks its own) or node ports. Repeats are fine. */
  readonly values: readonly T[];
}

/** Something wrong with a Service that repair reports but does not fix: a Warning Event on it. */
export interface RepairProblem<T extends string | number> {
  /** Service namespace. */
  readonly namespace: string;
  /** Service name. */
  readonly name: string;
  /** The offending ClusterIP or port. */
  readonly value: T;
  /** Event reason, upstream's: `ClusterIPOutOfRange`, `PortAlreadyAllocated`, … */
  readonly reason: string;
  /** Event message. */
  readonly message: string;
  /** For duplicates, `namespace/name` of another Service holding the same value. */
  readonly otherService?: string;
}

/** A value the stored bitmap lacked although a Service uses it; worth an Event (`…NotAllocated`). */
export interface RepairMarked<T extends string | number> {
  /** Service namespace. */
  readonly namespace: string;
  /** Service name. */
  readonly name: string;
  /** The value that is now marked. */
  readonly value: T;
  /** Event reason. */
  readonly reason: string;
  /** Event message. */
  readonly message: string;
}

/** What one repair pass should write and report. */
export interface RepairPlan<T extends string | number> {
  /** The bitmap to store: every value a Service uses, plus leaks still inside their grace period. */
  readonly bitmap: Bitmap;
  /** Whether {@link bitmap} differs from the stored one (no write needed otherwise). */
  readonly changed: boolean;
  /** Values used by Services but missing from the stored bitmap; now marked. */
  readonly marked: readonly RepairMarked<T>[];
  /** Leaked values freed because they stayed unused for the whole grace period. */
  readonly leaksFreed: readonly T[];
  /** Leaked values kept for now: they may belong to a create still in flight. */
  readonly leaksPending: readonly T[];
  /** Bitmap offset → first time (ms) seen unused; pass it to the next pass. */
  readonly seenUnusedSince: ReadonlyMap<number, number>;
  /** Out-of-range, duplicate and invalid values, for Warning Events. Nothing is taken from anyone. */
  readonly problems: readonly RepairProblem<T>[];
}

/** The stored state one pass starts from. */
export interface RepairInput<T extends string | number> {
  /** The configured range. */
  readonly range: AllocationRange<T>;
  /** The stored bitmap. */
  readonly bitmap: Bitmap;
}

interface Wording<T> {
  valid(value: T): boolean;
  ours(value: T): boolean;
  label(value: T): string;
  reasons: { notValid: string; outOfRange: string; duplicate: string; notAllocated: string };
  outOfRange(value: T): string;
}

function wordingFor<T extends string | number>(range: AllocationRange<T>): Wording<T> {
  if (range.kind === 'NodePort') {
    return {
      valid: (value) => range.isValid(value),
      ours: () => true,
      label: (value) => `Port ${value}`,
      reasons: {
        notValid: 'PortNotValid',
        outOfRange: 'PortOutOfRange',
        duplicate: 'PortAlreadyAllocated',
        notAllocated: 'PortNotAllocated',
      },
      outOfRange: (value) =>
        `Port ${value} is not within the port range ${range.spec}; please recreate service`,
    };
  }
  return {
    valid: (value) => range.isValid(value),
    // Values of the other family belong to the other allocator's pass. Unparseable ones are
    // reported by every family's pass, as upstream's single dual-stack pass reports them once each.
    ours: (value) => {
      const parsed = parseIP(String(value));
      return parsed === undefined || parsed.family === range.kind;
    },
    label: (value) => `Cluster IP [${range.kind}]:${value}`,
    reasons: {
      notValid: 'ClusterIPNotValid',
      outOfRange: 'ClusterIPOutOfRange',
      duplicate: 'ClusterIPAlreadyAllocated',
      notAllocated: 'ClusterIPNotAllocated',
    },
    outOfRange: (value) =>
      `Cluster IP [${range.kind}]:${value} is not within the configured Service CIDR ${range.spec}; please recreate service`,
  };
}

/**
 * One pass of the repair loop as a pure function: rebuilds what the bitmap should hold from
 * the Services and decides what to report.
 *
 * - Every in-range value a Service uses is marked; if the stored bitmap lacked it, that is
 *   reported as `…NotAllocated` ("repairing").
 * - A value set in the bitmap that no Service uses is a leak, or a create whose Service is not
 *   stored yet. It stays allocated until it has been seen unused for `gracePeriodMs`; seeing an
 *   owner again resets its clock.
 * - Out-of-range, invalid and shared values produce problems (Warning Events; a shared value's
 *   Event names another holder). Nothing is taken from either Service.
 *
 * @param services every Service's values from this allocator
 * @param current the stored range and bitmap
 * @param now current time in ms
 * @param seenUnusedSince the previous plan's {@link RepairPlan.seenUnusedSince} (empty at start)
 * @param gracePeriodMs how long a leak must stay unused before it is freed
 */
export function planRepair<T extends string | number>(
  services: readonly ServiceAllocations<T>[],
  current: RepairInput<T>,
  now: number,
  seenUnusedSince: ReadonlyMap<number, number>,
  gracePeriodMs: number,
): RepairPlan<T> {
  const { range } = current;
  if (current.bitmap.size !== range.size) {
    throw new RangeError(
      `bitmap has ${current.bitmap.size} entries but the range ${range.spec} has ${range.size}`,
    );
  }
  const wording = wordingFor(range);
  const problems: RepairProblem<T>[] = [];
  const holders = new Map<number, Array<{ namespace: string; name: string; value: T }>>();

  for (const service of services) {
    for (const value of new Set(service.values)) {
      if (!wording.ours(value)) continue;
      if (!wording.valid(value)) {
        problems.push({
          namespace: service.namespace,
          name: service.name,
          value,
          reason: wording.reasons.notValid,
          message: `${wording.label(value)} is not a valid ${range.kind === 'NodePort' ? 'port' : 'IP'}; please recreate service`,
        });
        continue;
      }
      const offset = range.offsetOf(value);
      if (offset === undefined) {
        problems.push({
          namespace: service.namespace,
          name: service.name,
          value,
          reason: wording.reasons.outOfRange,
          message: wording.outOfRange(value),
        });
        continue;
      }
      const list = holders.get(offset);
      const holder = { namespace: service.namespace, name: service.name, value };
      if (list === undefined) holders.set(offset, [holder]);
      else list.push(holder);
    }
  }

  const bitmap = new Bitmap(range.size);
  const marked: RepairMarked<T>[] = [];
  for (const offset of [...holders.keys()].sort((a, b) => a - b)) {
    const list = holders.get(offset)!;
    bitmap.set(offset);
    if (!current.bitmap.test(offset)) {
      for (const holder of list) {
        marked.push({
          ...holder,
          reason: wording.reasons.notAllocated,
          message: `${wording.label(holder.value)} is not allocated; repairing`,
        });
      }
    }
    if (list.length > 1) {
      for (const [index, holder] of list.entries()) {
        const other = list[index === 0 ? 1 : 0]!;
        const otherService = `${other.namespace}/${other.name}`;
        problems.push({
          ...holder,
          reason: wording.reasons.duplicate,
          message: `${wording.label(holder.value)} was assigned to multiple services (also ${otherService}); please recreate service`,
          otherService,
        });
      }
    }
  }

  const leaksFreed: T[] = [];
  const leaksPending: T[] = [];
  const nextSeen = new Map<number, number>();
  for (const offset of current.bitmap.setIndexes()) {
    if (holders.has(offset)) continue;
    const since = seenUnusedSince.get(offset) ?? now;
    if (now - since >= gracePeriodMs) {
      leaksFreed.push(range.valueAt(offset));
    } else {
      bitmap.set(offset);
      nextSeen.set(offset, since);
      leaksPending.push(range.valueAt(offset));
    }
  }

  return {
    bitmap,
    changed: !bitmap.equals(current.bitmap),
    marked,
    leaksFreed,
    leaksPending,
    seenUnusedSince: nextSeen,
    problems,
  };
}

/**
 * Runs {@link planRepair} inside a compare-and-swap on the store, so the plan is made against the
 * state actually overwritten (it is re-planned if another replica wrote in between), and writes
 * the plan's bitmap. Resolves with the plan that was written.
 */
export function applyRepair<T extends string | number>(
  store: ConfigMapAllocationStore<T>,
  services: readonly ServiceAllocations<T>[],
  now: number,
  seenUnusedSince: ReadonlyMap<number, number>,
  gracePeriodMs: number,
): Promise<RepairPlan<T>> {
  return store.update((allocator) => {
    const snapshot = allocator.snapshot();
    const plan = planRepair(
      services,
      { range: allocator.range, bitmap: snapshot.bitmap },
      now,
      seenUnusedSince,
      gracePeriodMs,
    );
    allocator.restore({ ...snapshot, bitmap: plan.bitmap });
    return plan;
  });
}

function serviceName(service: V1Service): { namespace: string; name: string } {
  return { namespace: service.metadata?.namespace ?? 'default', name: service.metadata?.name ?? '' };
}

/** The ClusterIPs each Service holds (`None` and empty are not allocations). */
export function clusterIPAllocationsOf(services: readonly V1Service[]): ServiceAllocations<string>[] {
  return services.map((service) => {
    const ips = service.spec?.clusterIPs ?? (service.spec?.clusterIP ? [service.spec.clusterIP] : []);
    return { ...serviceName(service), values: ips.filter((ip) => ip !== '' && ip !== 'None') };
  });
}

/** The node ports each Service holds: its ports' nodePorts and its healthCheckNodePort. */
export function nodePortAllocationsOf(services: readonly V1Service[]): ServiceAllocations<number>[] {
  return services.map((service) => {
    const ports = (service.spec?.ports ?? []).map((port) => port.nodePort ?? 0);
    ports.push(service.spec?.healthCheckNodePort ?? 0);
    return { ...serviceName(service), values: ports.filter((port) => port !== 0) };
  });
}
