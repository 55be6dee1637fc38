/**
 * The LoadBalancer address allocator: which Service holds which pool address, as an in-memory
 * state machine with no Kubernetes client. The controller rebuilds it from Services' status at
 * start, then drives it with {@link LoadBalancerIPAllocator.assign} and
 * {@link LoadBalancerIPAllocator.release}; every decision and every message is made here, so the
 * scenario tests exercise the whole policy without a server.
 */

import { ANNOTATION_IP_POOL } from '../../api/labels.ts';
import type { LoadBalancerIPPool } from '../../api/loadbalancerippool.ts';
import { formatIP, type IPFamily, parseIP } from '../ip.ts';
import {
  buildPoolSet,
  isBuggyIP,
  type ParsedPool,
  type PoolSet,
  poolAddresses,
  poolContains,
  poolHasFamily,
} from './pool.ts';
import { labelSelectorMatches } from './selector.ts';

/** One port of a Service as sharing sees it. */
export interface ServicePort {
  /** `TCP`, `UDP` or `SCTP`. */
  readonly protocol: string;
  /** `spec.ports[].port`. */
  readonly port: number;
}

/** What a Service asks of the allocator, extracted from the Service object by the controller. */
export interface LoadBalancerRequest {
  /** `namespace/name`; the holder named in messages. */
  readonly key: string;
  /** The Service's IP families, primary first; one address is assigned per family. */
  readonly families: readonly IPFamily[];
  /** Addresses asked for by annotation or `spec.loadBalancerIP`; empty for "any". */
  readonly requestedIPs: readonly string[];
  /** Where {@link requestedIPs} came from, as a field path for messages. */
  readonly requestedIPsField: string;
  /** The pool named by annotation, if any. */
  readonly poolName: string | undefined;
  /** The `allow-shared-ip` key; undefined or empty means the Service never shares. */
  readonly sharingKey: string | undefined;
  /**
   * Services sharing an address must have equal backend keys: the selector for
   * externalTrafficPolicy Local (all must reach the same nodes' endpoints), '' for Cluster.
   */
  readonly backendKey: string;
  /** The Service's ports; sharing Services must not both use one (protocol, port). */
  readonly ports: readonly ServicePort[];
  /** The Service's labels, for pools' serviceSelector. */
  readonly serviceLabels: Readonly<Record<string, string>>;
  /** The labels of the Service's namespace, for pools' namespaceSelector. */
  readonly namespaceLabels: Readonly<Record<string, string>>;
}

/** Why a Service could not get an address; the controller puts the message in a Warning Event. */
export type AllocationFailureReason =
  | 'InvalidRequest'
  | 'PoolNotFound'
  | 'NoMatchingPool'
  | 'PoolExhausted'
  | 'IPTaken'
  | 'IPNotInPool'
  | 'SharingClash';

/** The outcome of {@link LoadBalancerIPAllocator.assign} and {@link LoadBalancerIPAllocator.restore}. */
export type AssignResult =
  | {
      readonly ok: true;
      /** The Service's addresses, one per family, in the order of its families. */
      readonly ips: readonly string[];
      /** Addresses the Service keeps although no usable pool holds them any more. */
      readonly orphaned: readonly string[];
    }
  | { readonly ok: false; readonly reason: AllocationFailureReason; readonly message: string };

/** An address some Service holds that no usable pool contains. */
export interface OrphanedAddress {
  /** The holder, `namespace/name`. */
  readonly service: string;
  /** The address. */
  readonly ip: string;
}

/** Capacity and use of one pool. */
export interface PoolUsage {
  /** Addresses the pool offers (0 for an unusable pool). */
  readonly capacity: bigint;
  /** Distinct addresses of the pool held by Services. */
  readonly allocated: number;
}

interface HeldIP {
  readonly family: IPFamily;
  readonly value: bigint;
  readonly text: string;
  /** The usable pool that contains the address; undefined for an orphan. */
  pool: string | undefined;
  readonly holders: Map<string, LoadBalancerRequest>;
}

interface Candidate {
  readonly family: IPFamily;
  readonly value: bigint;
  readonly text: string;
}

/** Why an address cannot be shared with a holder. */
interface SharingConflict {
  readonly holder: string;
  /** Set when both Services have the same key, so the user meant them to share. */
  readonly sameKey: boolean;
  /** What stops the sharing; empty when the holder or the newcomer does not share at all. */
  readonly detail: string;
}

function conflictText(conflict: SharingConflict): string {
  return conflict.detail === '' ? conflict.holder : `${conflict.holder}, ${conflict.detail}`;
}

/**
 * Why `request` cannot share `held`, or undefined when it can (or nobody holds it). Mirrors
 * MetalLB's rules: equal non-empty keys, equal backend keys, no common (protocol, port).
 */
function sharingConflict(
  request: LoadBalancerRequest,
  held: HeldIP | undefined,
): SharingConflict | undefined {
  if (held === undefined) return undefined;
  for (const holder of held.holders.values()) {
    if (holder.key === request.key) continue;
    if (!request.sharingKey || !holder.sharingKey) return { holder: holder.key, sameKey: false, detail: '' };
    if (request.sharingKey !== holder.sharingKey) {
      return {
        holder: holder.key,
        sameKey: false,
        detail: `whose sharing key ${JSON.stringify(holder.sharingKey)} differs from ${JSON.stringify(request.sharingKey)}`,
      };
    }
    if (request.backendKey !== holder.backendKey) {
      return {
        holder: holder.key,
        sameKey: true,
        detail:
          'whose externalTrafficPolicy or selector differs (Services sharing an IP with externalTrafficPolicy Local must have the same selector)',
      };
    }
    const clash = request.ports.find((port) =>
      holder.ports.some((used) => used.protocol === port.protocol && used.port === port.port),
    );
    if (clash !== undefined) {
      return {
        holder: holder.key,
        sameKey: true,
        detail: `which already uses ${clash.protocol}/${clash.port} on it`,
      };
    }
  }
  return undefined;
}

function failure(reason: AllocationFailureReason, message: string): AssignResult {
  return { ok: false, reason, message };
}

function poolMatches(pool: ParsedPool, request: LoadBalancerRequest): boolean {
  return (
    labelSelectorMatches(pool.serviceSelector, request.serviceLabels) &&
    labelSelectorMatches(pool.namespaceSelector, request.namespaceLabels)
  );
}

const quote = JSON.stringify;

/**
 * Which Service holds which LoadBalancer address.
 *
 * - {@link assign} is idempotent: it releases the Service, keeps its previous addresses when they
 *   still satisfy it, and otherwise assigns afresh; running it twice changes nothing.
 * - {@link setPools} never takes an address away: one that no usable pool holds any more stays
 *   with its Service and is reported as orphaned, so a pool edit cannot break traffic.
 * - Messages name the Service holding a contested address (`requested IP … is taken by ns/name`).
 */
export class LoadBalancerIPAllocator {
  #pools: PoolSet = buildPoolSet([]);
  readonly #byService = new Map<string, readonly HeldIP[]>();
  readonly #ips = new Map<string, HeldIP>();
  /** sharing key → addresses held by at least one Service with that key. */
  readonly #sharedIPs = new Map<string, Set<string>>();

  /** @param pools the pools to start with; {@link setPools} replaces them later */
  constructor(pools: readonly LoadBalancerIPPool[] = []) {
    this.setPools(pools);
  }

  /** The parsed pools and the problems of the unusable ones. */
  get pools(): PoolSet {
    return this.#pools;
  }

  /**
   * Replaces the pools. Every allocation stays; the returned list names the addresses that no
   * usable pool contains any more, for the controller to warn about.
   */
  setPools(pools: readonly LoadBalancerIPPool[]): OrphanedAddress[] {
    this.#pools = buildPoolSet(pools);
    for (const held of this.#ips.values()) held.pool = this.#poolContaining(held.family, held.value)?.name;
    return this.orphans();
  }

  /** Addresses held by Services that no usable pool contains. */
  orphans(): OrphanedAddress[] {
    const found: OrphanedAddress[] = [];
    for (const held of this.#ips.values()) {
      if (held.pool !== undefined) continue;
      for (const service of held.holders.keys()) found.push({ service, ip: held.text });
    }
    return found;
  }

  /** The addresses `key` holds, in family order; undefined when it holds none. */
  assigned(key: string): readonly string[] | undefined {
    return this.#byService.get(key)?.map((held) => held.text);
  }

  /** The Services holding `ip`. */
  holdersOf(ip: string): string[] {
    return [...(this.#ips.get(ip)?.holders.keys() ?? [])];
  }

  /** Capacity and allocated count of every pool, usable or not, by name. */
  usage(): Map<string, PoolUsage> {
    const allocated = new Map<string, number>();
    for (const held of this.#ips.values()) {
      if (held.pool !== undefined) allocated.set(held.pool, (allocated.get(held.pool) ?? 0) + 1);
    }
    const usage = new Map<string, PoolUsage>();
    for (const name of [...this.#pools.capacities.keys(), ...this.#pools.problems.keys()]) {
      const usable = this.#pools.usable.some((pool) => pool.name === name);
      usage.set(name, {
        capacity: usable ? (this.#pools.capacities.get(name) ?? 0n) : 0n,
        allocated: allocated.get(name) ?? 0,
      });
    }
    return usage;
  }

  /**
   * Records addresses a Service already had (from its status) without checking pools, so the
   * state can be rebuilt at start before anything new is assigned. Fails when another Service
   * already holds one of them in a way sharing does not allow; that Service keeps it.
   */
  restore(request: LoadBalancerRequest, ips: readonly string[]): AssignResult {
    this.release(request.key);
    const candidates: Candidate[] = [];
    for (const text of ips) {
      const parsed = parseIP(text);
      if (parsed === undefined) {
        return failure(
          'InvalidRequest',
          `status.loadBalancer.ingress: Invalid value: ${quote(text)}: not an IP address`,
        );
      }
      const canonical = formatIP(parsed.family, parsed.value);
      const conflict = sharingConflict(request, this.#ips.get(canonical));
      if (conflict !== undefined) {
        return failure(
          conflict.sameKey ? 'SharingClash' : 'IPTaken',
          `IP ${canonical} is taken by ${conflictText(conflict)}`,
        );
      }
      candidates.push({ family: parsed.family, value: parsed.value, text: canonical });
    }
    return this.#take(request, candidates);
  }

  /**
   * Gives the Service its addresses: the ones it asked for, else from the pool it named, else
   * from the first matching auto-assign pool by priority. Idempotent (release, then assign).
   */
  assign(request: LoadBalancerRequest): AssignResult {
    const previous = this.#byService.get(request.key);
    // Releasing first is always safe: the Service must not count as a conflict with itself.
    this.release(request.key);
    if (request.families.length === 0) {
      return failure('InvalidRequest', 'spec.ipFamilies: Required value: the Service has no IP family');
    }
    if (previous !== undefined && this.#stillFits(request, previous)) {
      return this.#take(
        request,
        previous.map(({ family, value, text }) => ({ family, value, text })),
      );
    }
    if (request.requestedIPs.length > 0) return this.#assignRequested(request);
    return this.#assignFromPools(request);
  }

  /** Frees the Service's addresses; returns whether it held any. */
  release(key: string): boolean {
    const held = this.#byService.get(key);
    if (held === undefined) return false;
    this.#byService.delete(key);
    for (const ip of held) {
      const request = ip.holders.get(key);
      ip.holders.delete(key);
      if (request?.sharingKey) this.#forgetShared(request.sharingKey, ip);
      if (ip.holders.size === 0) this.#ips.delete(ip.text);
    }
    return true;
  }

  #forgetShared(sharingKey: string, ip: HeldIP): void {
    const stillShared = [...ip.holders.values()].some((holder) => holder.sharingKey === sharingKey);
    if (stillShared) return;
    const set = this.#sharedIPs.get(sharingKey);
    set?.delete(ip.text);
    if (set?.size === 0) this.#sharedIPs.delete(sharingKey);
  }

  /**
   * Whether the previous addresses still satisfy the request. An address no usable pool holds
   * counts as fitting: keeping the Service on it is what protects traffic through a pool edit.
   */
  #stillFits(request: LoadBalancerRequest, previous: readonly HeldIP[]): boolean {
    if (request.requestedIPs.length > 0) {
      const wanted = request.requestedIPs.map((text) => {
        const parsed = parseIP(text.trim());
        return parsed === undefined ? text : formatIP(parsed.family, parsed.value);
      });
      if (wanted.length !== previous.length || !previous.every((held) => wanted.includes(held.text)))
        return false;
    } else {
      const families = previous.map((held) => held.family);
      if (
        families.length !== request.families.length ||
        !request.families.every((f) => families.includes(f))
      ) {
        return false;
      }
    }
    return previous.every(
      (held) =>
        (request.poolName === undefined || held.pool === undefined || held.pool === request.poolName) &&
        sharingConflict(request, this.#ips.get(held.text)) === undefined,
    );
  }

  #assignRequested(request: LoadBalancerRequest): AssignResult {
    const field = request.requestedIPsField;
    const candidates: Candidate[] = [];
    for (const raw of request.requestedIPs) {
      const text = raw.trim();
      const parsed = parseIP(text);
      if (parsed === undefined) {
        return failure(
          'InvalidRequest',
          `${field}: Invalid value: ${quote(text)}: must be a valid IP address, at most one per IP family`,
        );
      }
      if (candidates.some((candidate) => candidate.family === parsed.family)) {
        return failure(
          'InvalidRequest',
          `${field}: Invalid value: ${quote(request.requestedIPs.join(','))}: at most one address per IP family`,
        );
      }
      if (!request.families.includes(parsed.family)) {
        return failure(
          'InvalidRequest',
          `${field}: Invalid value: ${quote(text)}: the Service's IP families (${request.families.join(', ')}) do not include ${parsed.family}`,
        );
      }
      const ip = formatIP(parsed.family, parsed.value);
      const pool = this.#poolContaining(parsed.family, parsed.value);
      if (pool === undefined)
        return failure('IPNotInPool', `requested IP ${ip} is not in any LoadBalancerIPPool`);
      if (request.poolName !== undefined && pool.name !== request.poolName) {
        return failure(
          'IPNotInPool',
          `requested IP ${ip} is not in LoadBalancerIPPool ${quote(request.poolName)} named by annotation ${ANNOTATION_IP_POOL}`,
        );
      }
      if (pool.avoidBuggyIPs && isBuggyIP(parsed.family, parsed.value)) {
        return failure(
          'IPNotInPool',
          `requested IP ${ip} ends in .0 or .255, which LoadBalancerIPPool ${quote(pool.name)} avoids (avoidBuggyIPs)`,
        );
      }
      if (!poolMatches(pool, request)) {
        return failure(
          'NoMatchingPool',
          `requested IP ${ip} is in LoadBalancerIPPool ${quote(pool.name)}, whose serviceSelector or namespaceSelector does not match the Service`,
        );
      }
      const conflict = sharingConflict(request, this.#ips.get(ip));
      if (conflict !== undefined) {
        return failure(
          conflict.sameKey ? 'SharingClash' : 'IPTaken',
          `requested IP ${ip} is taken by ${conflictText(conflict)}`,
        );
      }
      candidates.push({ family: parsed.family, value: parsed.value, text: ip });
    }
    return this.#take(request, candidates);
  }

  #assignFromPools(request: LoadBalancerRequest): AssignResult {
    const families = request.families.join(', ');
    let pools: ParsedPool[];
    if (request.poolName !== undefined) {
      const named = this.#pools.usable.find((pool) => pool.name === request.poolName);
      if (named === undefined) {
        const problem = this.#pools.problems.get(request.poolName);
        return problem === undefined
          ? failure(
              'PoolNotFound',
              `LoadBalancerIPPool ${quote(request.poolName)} named by annotation ${ANNOTATION_IP_POOL} does not exist`,
            )
          : failure(
              'NoMatchingPool',
              `LoadBalancerIPPool ${quote(request.poolName)} cannot be used: ${problem.message}`,
            );
      }
      if (!poolMatches(named, request)) {
        return failure(
          'NoMatchingPool',
          `LoadBalancerIPPool ${quote(named.name)} named by annotation ${ANNOTATION_IP_POOL} has a serviceSelector or namespaceSelector that does not match the Service`,
        );
      }
      const missing = request.families.find((family) => !poolHasFamily(named, family));
      if (missing !== undefined) {
        return failure(
          'NoMatchingPool',
          `LoadBalancerIPPool ${quote(named.name)} has no ${missing} addresses`,
        );
      }
      pools = [named];
    } else {
      pools = this.#pools.usable
        .filter(
          (pool) =>
            pool.autoAssign &&
            poolMatches(pool, request) &&
            request.families.every((family) => poolHasFamily(pool, family)),
        )
        .sort((a, b) => a.priority - b.priority || a.name.localeCompare(b.name));
      if (pools.length === 0) {
        return failure(
          'NoMatchingPool',
          `no LoadBalancerIPPool with autoAssign matches the Service and offers its IP families (${families})`,
        );
      }
    }
    const clashes: string[] = [];
    for (const pool of pools) {
      const chosen: Candidate[] = [];
      for (const family of request.families) {
        const found = this.#findInPool(pool, family, request, clashes);
        if (found === undefined) break;
        chosen.push(found);
      }
      if (chosen.length === request.families.length) return this.#take(request, chosen);
    }
    const names = pools.map((pool) => quote(pool.name)).join(', ');
    const why = clashes.length > 0 ? `; ${clashes.join('; ')}` : '';
    return failure(
      'PoolExhausted',
      `no available IPs in LoadBalancerIPPool${pools.length > 1 ? 's' : ''} ${names} for IP families (${families})${why}`,
    );
  }

  /**
   * The address of `family` for the request in `pool`: first an address already shared under
   * the request's key (so Services meant to share do share, whatever the address order), then
   * the lowest free or shareable one. Walks at most the held addresses plus one, so a /64 is cheap.
   */
  #findInPool(pool: ParsedPool, family: IPFamily, request: LoadBalancerRequest, clashes: string[]) {
    const noteClash = (text: string, conflict: SharingConflict) => {
      if (conflict.sameKey && clashes.length < 3) {
        clashes.push(
          `IP ${text} shared under key ${quote(request.sharingKey)} is held by ${conflictText(conflict)}`,
        );
      }
    };
    if (request.sharingKey) {
      for (const text of this.#sharedIPs.get(request.sharingKey) ?? []) {
        const held = this.#ips.get(text);
        if (held === undefined || held.family !== family || held.pool !== pool.name) continue;
        const conflict = sharingConflict(request, held);
        if (conflict === undefined) return { family, value: held.value, text };
        noteClash(text, conflict);
      }
    }
    for (const value of poolAddresses(pool, family)) {
      const text = formatIP(family, value);
      // A held address not shared under the request's key (checked above) cannot be shared.
      if (!this.#ips.has(text)) return { family, value, text };
    }
    return undefined;
  }

  #poolContaining(family: IPFamily, value: bigint): ParsedPool | undefined {
    return this.#pools.usable.find((pool) => poolContains(pool, family, value));
  }

  #take(request: LoadBalancerRequest, candidates: readonly Candidate[]): AssignResult {
    const held: HeldIP[] = [];
    const ordered = [...candidates].sort(
      (a, b) => request.families.indexOf(a.family) - request.families.indexOf(b.family),
    );
    for (const candidate of ordered) {
      let ip = this.#ips.get(candidate.text);
      if (ip === undefined) {
        ip = {
          ...candidate,
          pool: this.#poolContaining(candidate.family, candidate.value)?.name,
          holders: new Map(),
        };
        this.#ips.set(candidate.text, ip);
      }
      ip.holders.set(request.key, request);
      if (request.sharingKey) {
        let set = this.#sharedIPs.get(request.sharingKey);
        if (set === undefined) {
          set = new Set();
          this.#sharedIPs.set(request.sharingKey, set);
        }
        set.add(ip.text);
      }
      held.push(ip);
    }
    this.#byService.set(request.key, held);
    return {
      ok: true,
      ips: held.map((ip) => ip.text),
      orphaned: held.filter((ip) => ip.pool === undefined).map((ip) => ip.text),
    };
  }
}
