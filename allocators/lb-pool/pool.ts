/**
 * LoadBalancerIPPool addresses as data: parsing `spec.addresses` (CIDRs and `first-last` ranges,
 * IPv4 and IPv6), capacity after `avoidBuggyIPs`, and overlap detection between pools. Pure: no
 * Kubernetes client, so the webhook, the controller and the tests share one set of rules.
 */
import type { V1LabelSelector } from '@kubernetes/client-node';
import type { LoadBalancerIPPool } from '../../api/loadbalancerippool.ts';
import { formatIP, type IPFamily, parseIP } from '../ip.ts';

/** One contiguous, inclusive block of addresses from one entry of `spec.addresses`. */
export interface AddressRange {
  /** IPv4 or IPv6; a range never mixes them. */
  readonly family: IPFamily;
  /** First address, as an integer. */
  readonly first: bigint;
  /** Last address (inclusive), as an integer. */
  readonly last: bigint;
  /** The entry as the user wrote it, for messages. */
  readonly text: string;
  /** Index of the entry in `spec.addresses`, for field paths. */
  readonly index: number;
}

/** A pool whose addresses all parsed: what allocation needs from a LoadBalancerIPPool. */
export interface ParsedPool {
  /** `metadata.name`. */
  readonly name: string;
  /** The address blocks, in `spec.addresses` order. */
  readonly ranges: readonly AddressRange[];
  /** `spec.autoAssign`, default true. */
  readonly autoAssign: boolean;
  /** `spec.avoidBuggyIPs`, default false: IPv4 addresses ending in .0 or .255 are never handed out. */
  readonly avoidBuggyIPs: boolean;
  /** `spec.priority`, default 0; lower is tried first. */
  readonly priority: number;
  /** `spec.serviceSelector`; absent matches every Service. */
  readonly serviceSelector: V1LabelSelector | undefined;
  /** `spec.namespaceSelector`; absent matches every namespace. */
  readonly namespaceSelector: V1LabelSelector | undefined;
  /** Addresses the pool can hand out, after `avoidBuggyIPs`. */
  readonly capacity: bigint;
}

/** The outcome of {@link parsePool}: the parsed pool, or the field errors that make it unusable. */
export type PoolParseResult =
  | { readonly ok: true; readonly pool: ParsedPool }
  | { readonly ok: false; readonly errors: readonly string[] };

const BITS: Record<IPFamily, bigint> = { IPv4: 32n, IPv6: 128n };

function invalid(index: number, text: string, detail: string): string {
  return `spec.addresses[${index}]: Invalid value: ${JSON.stringify(text)}: ${detail}`;
}

/**
 * Parses one `spec.addresses` entry. A CIDR must have no bits set after its prefix, as
 * Kubernetes requires of `--service-cluster-ip-range`, so the pool holds what its text says.
 */
export function parseAddressEntry(text: string, index: number): AddressRange | string {
  const allowed = 'must be a CIDR (198.18.200.0/24, fd00:10::/120) or a range first-last of one IP family';
  const dash = text.indexOf('-');
  if (dash !== -1) {
    const first = parseIP(text.slice(0, dash).trim());
    const last = parseIP(text.slice(dash + 1).trim());
    if (first === undefined || last === undefined) return invalid(index, text, allowed);
    if (first.family !== last.family) {
      return invalid(index, text, 'the first and last address of a range must be of the same IP family');
    }
    if (first.value > last.value) {
      return invalid(index, text, 'the first address of a range must not be after the last');
    }
    return { family: first.family, first: first.value, last: last.value, text, index };
  }
  const slash = text.indexOf('/');
  if (slash === -1) return invalid(index, text, allowed);
  const base = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (base === undefined || !/^\d{1,3}$/.test(prefixText)) return invalid(index, text, allowed);
  const prefix = BigInt(prefixText);
  const bits = BITS[base.family];
  if (prefix > bits) {
    return invalid(index, text, `the prefix length must be between 0 and ${bits} for ${base.family}`);
  }
  const hostBits = bits - prefix;
  const hostMask = (1n << hostBits) - 1n;
  if ((base.value & hostMask) !== 0n) {
    const network = formatIP(base.family, base.value & ~hostMask);
    return invalid(
      index,
      text,
      `must be a network address with no bits set after the prefix (${network}/${prefix})`,
    );
  }
  return { family: base.family, first: base.value, last: base.value | hostMask, text, index };
}

/** How many values `v` in `[first, last]` have `v mod 256 === residue`. */
function countResidue(first: bigint, last: bigint, residue: bigint): bigint {
  const upTo = (n: bigint) => (n < residue ? 0n : (n - residue) / 256n + 1n);
  return upTo(last) - (first === 0n ? 0n : upTo(first - 1n));
}

/** True for an IPv4 address ending in .0 or .255, which `avoidBuggyIPs` skips. */
export function isBuggyIP(family: IPFamily, value: bigint): boolean {
  if (family !== 'IPv4') return false;
  const lastOctet = value & 0xffn;
  return lastOctet === 0n || lastOctet === 255n;
}

/** Addresses of `range` a pool hands out, after `avoidBuggyIPs`. */
export function rangeCapacity(range: AddressRange, avoidBuggyIPs: boolean): bigint {
  const size = range.last - range.first + 1n;
  if (!avoidBuggyIPs || range.family !== 'IPv4') return size;
  return size - countResidue(range.first, range.last, 0n) - countResidue(range.first, range.last, 255n);
}

/** True when the two ranges are of one family and share at least one address. */
export function rangesOverlap(a: AddressRange, b: AddressRange): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

/**
 * Parses a pool's spec. Any bad entry makes the whole pool unusable: handing out addresses from
 * a half-understood pool could give away addresses the user meant to exclude.
 */
export function parsePool(pool: LoadBalancerIPPool): PoolParseResult {
  const name = pool.metadata.name ?? '';
  const errors: string[] = [];
  const ranges: AddressRange[] = [];
  const addresses = pool.spec?.addresses ?? [];
  if (addresses.length === 0)
    errors.push('spec.addresses: Required value: a pool needs at least one address');
  addresses.forEach((text, index) => {
    const parsed = parseAddressEntry(text, index);
    if (typeof parsed === 'string') {
      errors.push(parsed);
      return;
    }
    const clash = ranges.find((range) => rangesOverlap(range, parsed));
    if (clash !== undefined) {
      errors.push(invalid(index, text, `overlaps spec.addresses[${clash.index}] (${clash.text})`));
      return;
    }
    ranges.push(parsed);
  });
  const priority = pool.spec?.priority ?? 0;
  if (!Number.isInteger(priority) || priority < 0) {
    errors.push(`spec.priority: Invalid value: ${priority}: must be greater than or equal to 0`);
  }
  if (errors.length > 0) return { ok: false, errors };
  const avoidBuggyIPs = pool.spec.avoidBuggyIPs ?? false;
  return {
    ok: true,
    pool: {
      name,
      ranges,
      autoAssign: pool.spec.autoAssign ?? true,
      avoidBuggyIPs,
      priority,
      serviceSelector: pool.spec.serviceSelector,
      namespaceSelector: pool.spec.namespaceSelector,
      capacity: ranges.reduce((sum, range) => sum + rangeCapacity(range, avoidBuggyIPs), 0n),
    },
  };
}

/** Why a pool cannot hand out addresses. */
export interface PoolProblem {
  /** `InvalidAddresses` or `Overlapping`. */
  readonly reason: 'InvalidAddresses' | 'Overlapping';
  /** What is wrong, naming the field, the value and, for overlaps, both pools. */
  readonly message: string;
}

/** Every pool sorted into those that may hand out addresses and those that may not, with why. */
export interface PoolSet {
  /** Pools that parsed and overlap no older pool, in the order they were given. */
  readonly usable: readonly ParsedPool[];
  /** Pools that are unusable, by name. */
  readonly problems: ReadonlyMap<string, PoolProblem>;
  /** Capacity of every pool that parsed, including overlapping ones, by name. */
  readonly capacities: ReadonlyMap<string, bigint>;
}

function creationOrder(pool: LoadBalancerIPPool): string {
  const created = pool.metadata.creationTimestamp;
  if (created === undefined) return '';
  return created instanceof Date ? created.toISOString() : String(created);
}

/**
 * Parses every pool and settles overlaps between them: the older pool (by creationTimestamp,
 * then name) keeps the addresses and the newer one is unusable until edited. Refusing both
 * would take addresses away from Services already using the older pool.
 */
export function buildPoolSet(pools: readonly LoadBalancerIPPool[]): PoolSet {
  const ordered = [...pools].sort((a, b) => {
    const byAge = creationOrder(a).localeCompare(creationOrder(b));
    return byAge !== 0 ? byAge : (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');
  });
  const usable: ParsedPool[] = [];
  const problems = new Map<string, PoolProblem>();
  const capacities = new Map<string, bigint>();
  for (const pool of ordered) {
    const parsed = parsePool(pool);
    if (!parsed.ok) {
      problems.set(pool.metadata.name ?? '', {
        reason: 'InvalidAddresses',
        message: parsed.errors.join('; '),
      });
      continue;
    }
    capacities.set(parsed.pool.name, parsed.pool.capacity);
    const overlap = findOverlap(parsed.pool, usable);
    if (overlap !== undefined) {
      problems.set(parsed.pool.name, { reason: 'Overlapping', message: overlap });
      continue;
    }
    usable.push(parsed.pool);
  }
  const order = new Map(pools.map((pool, index) => [pool.metadata.name ?? '', index]));
  usable.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
  return { usable, problems, capacities };
}

/**
 * The first overlap of `pool` with any of `others`, as a message naming both pools and both
 * entries; undefined when there is none.
 */
export function findOverlap(pool: ParsedPool, others: readonly ParsedPool[]): string | undefined {
  for (const range of pool.ranges) {
    for (const other of others) {
      const clash = other.ranges.find((candidate) => rangesOverlap(candidate, range));
      if (clash !== undefined) {
        return `LoadBalancerIPPool ${JSON.stringify(pool.name)} spec.addresses[${range.index}] ${range.text} overlaps ${clash.text} of LoadBalancerIPPool ${JSON.stringify(other.name)}`;
      }
    }
  }
  return undefined;
}

/** True when one of the pool's ranges holds the address, buggy or not. */
export function poolContains(pool: ParsedPool, family: IPFamily, value: bigint): boolean {
  return pool.ranges.some((range) => range.family === family && range.first <= value && value <= range.last);
}

/** True when the pool has at least one range of `family`. */
export function poolHasFamily(pool: ParsedPool, family: IPFamily): boolean {
  return pool.ranges.some((range) => range.family === family);
}

/**
 * Addresses of `family` the pool offers, lowest first within each range, in `spec.addresses`
 * order. Lazy, so a /64 costs nothing until walked; callers stop as soon as they find one.
 */
export function* poolAddresses(pool: ParsedPool, family: IPFamily): Generator<bigint> {
  for (const range of pool.ranges) {
    if (range.family !== family) continue;
    for (let value = range.first; value <= range.last; value++) {
      if (pool.avoidBuggyIPs && isBuggyIP(family, value)) continue;
      yield value;
    }
  }
}

/** Saturates a bigint count to a JSON-safe number, as the pool status field documents. */
export function saturatingNumber(count: bigint): number {
  return count > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(count);
}
