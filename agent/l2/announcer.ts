/**
 * L2 announcement of LoadBalancer IPs: for every IP this node is eligible for, campaign for the
 * IP's Lease (the runtime's {@link LeaderElector}, one per IP, holder identity = node name) and,
 * while holding it, carry the IP on the LAN interface so this node alone answers ARP/NDP for it.
 *
 * Invariants, in the order the code keeps them:
 * - an address is added only after the lease is acquired, and removed before the lease is
 *   released or given up, so two nodes never carry the IP at once while agents are alive;
 * - a dead agent stops refreshing the address lifetime, so the kernel drops the IP before the
 *   lease expires for the other candidates (see addresses.ts);
 * - every resync compares the addresses on the interface with the leases held and removes the
 *   rest (kube-vip's duplicate VIP bug came from trusting lease events alone);
 * - an IP goes back to a more preferred node only by handing the Lease to it after the address is
 *   gone (rebalance.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { apiStatusCode, describeError } from '../../controllers/runtime/kube.ts';
import {
  type LeaderElectionTiming,
  LeaderElector,
  nextLeaseSpec,
} from '../../controllers/runtime/leader-election.ts';
import type { Logger } from '../../controllers/runtime/logging.ts';
import type { AnnouncementAddresses } from './addresses.ts';
import { l2LeaseName } from './eligibility.ts';
import type { NodePresence } from './presence.ts';
import { HANDOFF_BACKOFF_MS, handoffTarget } from './rebalance.ts';

/** Timing of L2 announcement, in milliseconds. */
export interface L2Timing extends LeaderElectionTiming {
  /** How long a candidate that is not first in the preference order waits per rank before contending. */
  contendDelayMs: number;
  /** How often held addresses get their lifetime renewed; well below the address lifetime. */
  refreshPeriodMs: number;
  /** How often configured addresses are compared with held leases and gratuitous ARP repeated. */
  resyncPeriodMs: number;
}

/** Defaults: failover within lease + retry (about 3.5 s), as kube-vip's per-Service leases. */
export const DEFAULT_L2_TIMING: L2Timing = {
  leaseDurationMs: 3_000,
  renewDeadlineMs: 2_000,
  retryPeriodMs: 500,
  contendDelayMs: 300,
  refreshPeriodMs: 250,
  resyncPeriodMs: 10_000,
};

/** Seconds an unrefreshed address survives: one, the shortest the kernel supports. */
export const ADDRESS_LIFETIME_SECONDS = 1;

/** Gratuitous ARP goes out at least these delays after takeover: neighbours may miss one. */
const TAKEOVER_ANNOUNCE_DELAYS_MS = [0, 500, 2_000];

/** Gratuitous ARP processes run at once during a resync. */
const ANNOUNCE_CONCURRENCY = 16;

/**
 * Checks the timing; messages name the flags (`--l2-lease-duration` etc.). Beside the leader
 * election rules, the lease must outlast an address the kernel has not yet expired: lifetime plus
 * one second of kernel rounding plus one refresh period.
 */
export function validateL2Timing(timing: L2Timing): string[] {
  const seconds = (ms: number) => `${ms / 1000}s`;
  const errors: string[] = [];
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = timing;
  if (!(leaseDurationMs > 0) || leaseDurationMs % 1000 !== 0) {
    errors.push(
      `--l2-lease-duration: Invalid value: "${seconds(leaseDurationMs)}": must be a whole number of seconds greater than zero`,
    );
  }
  if (!(renewDeadlineMs > 0) || renewDeadlineMs >= leaseDurationMs) {
    errors.push(
      `--l2-renew-deadline: Invalid value: "${seconds(renewDeadlineMs)}": must be greater than zero and less than --l2-lease-duration (${seconds(leaseDurationMs)})`,
    );
  }
  if (!(retryPeriodMs > 0) || retryPeriodMs >= renewDeadlineMs) {
    errors.push(
      `--l2-retry-period: Invalid value: "${seconds(retryPeriodMs)}": must be greater than zero and less than --l2-renew-deadline (${seconds(renewDeadlineMs)})`,
    );
  }
  const minimumLeaseMs = (ADDRESS_LIFETIME_SECONDS + 1) * 1000 + timing.refreshPeriodMs;
  if (leaseDurationMs < minimumLeaseMs) {
    errors.push(
      `--l2-lease-duration: Invalid value: "${seconds(leaseDurationMs)}": must be at least ${seconds(minimumLeaseMs)} so a dead holder's address expires before the lease`,
    );
  }
  if (!(timing.refreshPeriodMs > 0) || timing.refreshPeriodMs >= ADDRESS_LIFETIME_SECONDS * 1000) {
    errors.push(
      `refresh period: Invalid value: "${seconds(timing.refreshPeriodMs)}": must be less than the address lifetime (${ADDRESS_LIFETIME_SECONDS}s)`,
    );
  }
  return errors;
}

/** An IP this node may announce, with its place in the IP's preference order (0 = first choice). */
export interface AnnouncementTarget {
  readonly ip: string;
  readonly rank: number;
  /** The eligible nodes ahead of this one, best first (`rank` of them); absent: none known. */
  readonly preferred?: readonly string[];
}

/** Compare-and-swap attempts of a handover that races this node's own renewals. */
const HANDOFF_ATTEMPTS = 3;

/** Options of {@link L2Announcer}. */
export interface L2AnnouncerOptions {
  kubeConfig: KubeConfig;
  /** Namespace of the per-IP Leases (the agent's own). */
  namespace: string;
  /** This node's name, written as the Lease holder. */
  nodeName: string;
  addresses: AnnouncementAddresses;
  timing?: L2Timing;
  logger: Logger;
  /** Other nodes' announcers that are alive; without it an IP is never handed back. */
  presence?: NodePresence;
}

/** One IP's campaign: the elector loop and whether this node currently announces it. */
interface Campaign {
  readonly ip: string;
  rank: number;
  readonly abort: AbortController;
  elector: LeaderElector | undefined;
  announcing: boolean;
  done: Promise<void>;
  preferred: readonly string[];
  /** When this node last took the IP (local clock). */
  heldSinceMs: number;
  /** Agent incarnations the IP was handed to, until when they are not offered it again. */
  readonly blockedUntilMs: Map<string, number>;
}

/**
 * Runs the per-IP campaigns of one node. {@link update} is level-triggered: call it with the full
 * set of IPs this node is eligible for whenever Services, EndpointSlices or Nodes change.
 */
export class L2Announcer {
  readonly #options: L2AnnouncerOptions;
  readonly #timing: L2Timing;
  readonly #logger: Logger;
  readonly #campaigns = new Map<string, Campaign>();
  readonly #leases: CoordinationV1Api;
  #refreshTimer: NodeJS.Timeout | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;
  #prepared = false;
  #stopped = false;
  #refreshPending = false;
  /**
   * Every address change (takeover, withdrawal, lifetime refresh, resync) runs on this one chain,
   * so a refresh that read the held set can never re-add an address a withdrawal just removed.
   */
  #chain: Promise<void> = Promise.resolve();
  /**
   * Campaigns being ended, by IP. An IP that becomes eligible again waits for its old campaign's
   * release, which would otherwise clear the lease under the new campaign and let another node
   * take it while this one still carries the address.
   */
  readonly #ending = new Map<string, Promise<void>>();

  constructor(options: L2AnnouncerOptions) {
    this.#options = options;
    this.#timing = options.timing ?? DEFAULT_L2_TIMING;
    const errors = validateL2Timing(this.#timing);
    if (errors.length > 0) throw new Error(errors.join('; '));
    this.#logger = options.logger.child({ component: 'l2-announcer', node: options.nodeName });
    this.#leases = options.kubeConfig.makeApiClient(CoordinationV1Api);
  }

  /** Starts the lifetime refresh and the periodic resync. */
  start(): void {
    this.#refreshTimer = setInterval(() => this.#refresh(), this.#timing.refreshPeriodMs);
    this.#resyncTimer = setInterval(() => void this.resync(), this.#timing.resyncPeriodMs);
    // A restarted agent finds its predecessor's addresses here before holding any lease.
    void this.#serial(() => this.#reconcileAddresses());
  }

  /** IPs this node announces now, sorted. */
  announcedIps(): string[] {
    return [...this.#campaigns.values()]
      .filter((campaign) => campaign.announcing)
      .map((campaign) => campaign.ip)
      .sort();
  }

  /**
   * Starts campaigns for new targets and ends those no longer eligible: their address goes
   * first, then the lease is released so the next candidate takes over at its next retry.
   */
  async update(targets: readonly AnnouncementTarget[]): Promise<void> {
    if (this.#stopped) return;
    const wanted = new Map(targets.map((target) => [target.ip, target]));
    const ending: Promise<void>[] = [];
    for (const [ip, campaign] of this.#campaigns) {
      const target = wanted.get(ip);
      if (target === undefined) {
        this.#campaigns.delete(ip);
        const ended = this.#end(campaign, 'no longer eligible').finally(() => {
          if (this.#ending.get(ip) === ended) this.#ending.delete(ip);
        });
        this.#ending.set(ip, ended);
        ending.push(ended);
      } else {
        campaign.rank = target.rank;
        campaign.preferred = target.preferred ?? [];
      }
    }
    for (const target of targets) {
      if (!this.#campaigns.has(target.ip)) this.#campaigns.set(target.ip, this.#begin(target));
    }
    await Promise.all([...ending, this.rebalance()]);
  }

  /**
   * Hands each IP this node announces to the best more-preferred node whose announcer is alive
   * (rebalance.ts); call it when the plan or other nodes' presence changed.
   */
  async rebalance(): Promise<void> {
    const presence = this.#options.presence;
    if (presence === undefined || this.#stopped) return;
    const handovers: Promise<void>[] = [];
    for (const campaign of this.#campaigns.values()) {
      if (!campaign.announcing || campaign.preferred.length === 0) continue;
      const to = handoffTarget({
        preferred: campaign.preferred,
        heldSinceMs: campaign.heldSinceMs,
        nowMs: Date.now(),
        presence,
        blockedUntilMs: campaign.blockedUntilMs,
      });
      if (to !== undefined) {
        const logger = this.#logger.child({ ip: campaign.ip });
        handovers.push(this.#handOff(campaign, to, logger));
      }
    }
    await Promise.all(handovers);
  }

  /**
   * Compares the addresses on the interface with the leases held: removes addresses of IPs not
   * held, restores held ones that disappeared, and repeats gratuitous ARP for held IPs so
   * neighbours that were cut off (a healed partition) learn the owner again.
   */
  async resync(): Promise<void> {
    await this.#serial(() => this.#reconcileAddresses());
    // Outside the chain: each arping waits about a second, which must not hold up a takeover.
    const held = this.announcedIps();
    for (let start = 0; start < held.length; start += ANNOUNCE_CONCURRENCY) {
      await Promise.all(
        held.slice(start, start + ANNOUNCE_CONCURRENCY).map((ip) =>
          this.#options.addresses.announce(ip).catch((error: unknown) => {
            this.#logger.warn('gratuitous ARP failed', { ip, error: describeError(error) });
          }),
        ),
      );
    }
  }

  async #reconcileAddresses(): Promise<void> {
    if (this.#stopped) return;
    try {
      const configured = new Set(await this.#options.addresses.configured());
      const held = new Set(this.announcedIps());
      const strays = [...configured].filter((ip) => !held.has(ip));
      if (strays.length > 0) {
        this.#logger.warn('removing announced addresses without a held lease', { ips: strays });
        await this.#options.addresses.remove(strays);
      }
      const missing = [...held].filter((ip) => !configured.has(ip));
      if (missing.length > 0) await this.#options.addresses.configure(missing);
    } catch (error) {
      this.#logger.warn('L2 resync failed', { error: describeError(error) });
    }
  }

  /** Clean shutdown: removes every address, then releases every lease held. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#refreshTimer);
    clearInterval(this.#resyncTimer);
    const campaigns = [...this.#campaigns.values()];
    this.#campaigns.clear();
    await Promise.all([
      ...campaigns.map((campaign) => this.#end(campaign, 'shutting down')),
      ...this.#ending.values(),
    ]);
  }

  #begin(target: AnnouncementTarget): Campaign {
    const campaign: Campaign = {
      ip: target.ip,
      rank: target.rank,
      abort: new AbortController(),
      elector: undefined,
      announcing: false,
      done: Promise.resolve(),
      preferred: target.preferred ?? [],
      heldSinceMs: 0,
      blockedUntilMs: new Map(),
    };
    campaign.done = this.#campaign(campaign).catch((error: unknown) => {
      this.#logger.error('L2 campaign failed', { ip: campaign.ip, error: describeError(error) });
    });
    return campaign;
  }

  async #campaign(campaign: Campaign): Promise<void> {
    const signal = campaign.abort.signal;
    const logger = this.#logger.child({ ip: campaign.ip });
    await this.#ending.get(campaign.ip);
    // The first choice contends at once; the others only after it had its chance, which spreads
    // ownership over nodes. Failover does not depend on this: every candidate keeps campaigning.
    await sleep(campaign.rank * this.#timing.contendDelayMs, undefined, { signal }).catch(() => undefined);
    while (!signal.aborted) {
      const elector = new LeaderElector({
        kubeConfig: this.#options.kubeConfig,
        namespace: this.#options.namespace,
        leaseName: l2LeaseName(campaign.ip),
        identity: this.#options.nodeName,
        timing: this.#timing,
        logger,
        onStartedLeading: () => void this.#serial(() => this.#takeOver(campaign, logger)),
      });
      campaign.elector = elector;
      const outcome = await elector.run(signal);
      await this.#serial(() => this.#withdraw(campaign, logger));
      if (outcome === 'stopped') return;
    }
  }

  async #end(campaign: Campaign, reason: string): Promise<void> {
    campaign.abort.abort();
    await campaign.done;
    await this.#serial(() => this.#withdraw(campaign, this.#logger.child({ ip: campaign.ip })));
    if (campaign.elector !== undefined) {
      await campaign.elector.release();
      this.#logger.info('ended L2 campaign', { ip: campaign.ip, reason });
    }
  }

  #serial(step: () => Promise<void>): Promise<void> {
    this.#chain = this.#chain.then(step).catch((error: unknown) => {
      this.#logger.warn('L2 address change failed', { error: describeError(error) });
    });
    return this.#chain;
  }

  async #takeOver(campaign: Campaign, logger: Logger): Promise<void> {
    if (campaign.abort.signal.aborted || campaign.elector?.isLeader() !== true) return;
    if (!this.#prepared) {
      await this.#options.addresses.prepare();
      this.#prepared = true;
    }
    await this.#options.addresses.configure([campaign.ip]);
    campaign.announcing = true;
    campaign.heldSinceMs = Date.now();
    logger.info('announcing LoadBalancer IP');
    void this.#announceRepeatedly(campaign, logger);
  }

  /**
   * Withdraws the address, then writes the Lease over to `to` (rebalance.ts). If the Lease
   * cannot be written this node still holds it, so the address comes back at once. The write
   * runs outside the address chain: a slow API server must not hold up the lifetime refresh of
   * the other addresses this node carries. Never call it from a chain step: it queues its own.
   */
  async #handOff(campaign: Campaign, to: string, logger: Logger): Promise<void> {
    const holding = () => !campaign.abort.signal.aborted && campaign.elector?.isLeader() === true;
    let withdrawn = false;
    await this.#serial(async () => {
      if (!campaign.announcing || !holding()) return;
      await this.#withdraw(campaign, logger);
      withdrawn = true;
    });
    if (!withdrawn) return;
    const incarnation = this.#options.presence?.lastSeen(to)?.incarnation;
    if (await this.#writeHandoff(campaign.ip, to, logger)) {
      if (incarnation !== undefined)
        campaign.blockedUntilMs.set(incarnation, Date.now() + HANDOFF_BACKOFF_MS);
      logger.info('handed LoadBalancer IP to a more preferred node', { to });
      return;
    }
    await this.#serial(async () => {
      if (campaign.announcing || !holding()) return;
      await this.#options.addresses.configure([campaign.ip]);
      campaign.announcing = true;
    });
  }

  /**
   * True once the Lease names `to`; false when this node no longer holds it or could not write
   * it within the renew deadline.
   */
  async #writeHandoff(ip: string, to: string, logger: Logger): Promise<boolean> {
    const name = l2LeaseName(ip);
    const namespace = this.#options.namespace;
    const deadline = Date.now() + this.#timing.renewDeadlineMs;
    for (let attempt = 1; attempt <= HANDOFF_ATTEMPTS; attempt++) {
      try {
        const lease = await beforeDeadline(this.#leases.readNamespacedLease({ name, namespace }), deadline);
        if (lease.spec?.holderIdentity !== this.#options.nodeName) return false;
        // A new term for `to`; the resourceVersion read makes it a compare-and-swap.
        const spec = nextLeaseSpec(lease, 'take', to, this.#timing.leaseDurationMs, new Date());
        await beforeDeadline(
          this.#leases.replaceNamespacedLease({ name, namespace, body: { ...lease, spec } }),
          deadline,
        );
        return true;
      } catch (error) {
        // 409: this node's own renewal wrote in between; read again.
        if (apiStatusCode(error) !== 409) {
          logger.warn('could not hand the Lease over', { to, error: describeError(error) });
          return false;
        }
      }
    }
    return false;
  }

  async #announceRepeatedly(campaign: Campaign, logger: Logger): Promise<void> {
    let previousMs = 0;
    for (const delayMs of TAKEOVER_ANNOUNCE_DELAYS_MS) {
      await sleep(delayMs - previousMs);
      previousMs = delayMs;
      if (!campaign.announcing) return;
      await this.#options.addresses.announce(campaign.ip).catch((error: unknown) => {
        logger.warn('gratuitous ARP failed', { error: describeError(error) });
      });
    }
  }

  async #withdraw(campaign: Campaign, logger: Logger): Promise<void> {
    if (!campaign.announcing) return;
    campaign.announcing = false;
    await this.#options.addresses.remove([campaign.ip]);
    logger.info('stopped announcing LoadBalancer IP');
  }

  /** Renews the lifetime of held addresses; skipped while the previous renewal is still queued. */
  #refresh(): void {
    if (this.#refreshPending) return;
    this.#refreshPending = true;
    void this.#serial(async () => {
      this.#refreshPending = false;
      const held = this.announcedIps();
      if (held.length === 0) return;
      await this.#options.addresses.configure(held).catch((error: unknown) => {
        this.#logger.warn('could not renew announced addresses', { error: describeError(error) });
      });
    });
  }
}

/** `promise`, or a rejection once `deadlineMs` (epoch ms) has passed. */
function beforeDeadline<T>(promise: Promise<T>, deadlineMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error('Lease request did not finish within the renew deadline')),
      Math.max(0, deadlineMs - Date.now()),
    );
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
