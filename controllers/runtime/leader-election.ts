/**
 * Leader election on a coordination.k8s.io/v1 Lease, with the semantics of client-go's
 * leaderelection package:
 * - a candidate takes the lease when it is free (no holder) or when the holder has not renewed it
 *   for a whole lease duration, measured on the candidate's own clock from the moment it first saw
 *   the current record (so clock skew between replicas does not matter);
 * - every write carries the resourceVersion that was read, so of two candidates racing for an
 *   expired lease exactly one wins and the other gets 409 Conflict;
 * - a leader that cannot renew within the renew deadline gives up (its controllers are stopped)
 *   while the lease it last wrote is still valid, so two leaders never act at once;
 * - a leader that shuts down cleanly clears the holder so a standby takes over at its next retry.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { apiStatusCode, describeError } from './kube.ts';
import type { Logger } from './logging.ts';

/** Timing of leader election, in milliseconds. */
export interface LeaderElectionTiming {
  /** How long a lease stays valid after its last renewal; standbys wait this long before taking it. */
  leaseDurationMs: number;
  /** How long a leader keeps trying to renew before it gives up leadership. Must be below the lease duration. */
  renewDeadlineMs: number;
  /** Pause between attempts to acquire or renew. Must be below the renew deadline. */
  retryPeriodMs: number;
}

/** The defaults of kube-controller-manager: 15 s lease, 10 s renew deadline, 2 s retry period. */
export const DEFAULT_LEADER_ELECTION_TIMING: LeaderElectionTiming = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/**
 * Checks the ordering the algorithm relies on and returns one message per violation, phrased
 * with the flag names, e.g. `--leader-elect-renew-deadline: Invalid value: "20s": must be less
 * than --leader-elect-lease-duration (15s)`. Empty when the timing is usable.
 */
export function validateLeaderElectionTiming(timing: LeaderElectionTiming): string[] {
  const errors: string[] = [];
  const seconds = (ms: number) => `${ms / 1000}s`;
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = timing;
  for (const [flag, value] of [
    ['--leader-elect-lease-duration', leaseDurationMs],
    ['--leader-elect-renew-deadline', renewDeadlineMs],
    ['--leader-elect-retry-period', retryPeriodMs],
  ] as const) {
    if (!(value > 0)) {
      errors.push(`${flag}: Invalid value: "${seconds(value)}": must be greater than zero`);
    }
  }
  if (leaseDurationMs % 1000 !== 0) {
    errors.push(
      `--leader-elect-lease-duration: Invalid value: "${seconds(leaseDurationMs)}": must be a whole number of seconds (Lease spec.leaseDurationSeconds is an integer)`,
    );
  }
  if (renewDeadlineMs >= leaseDurationMs) {
    errors.push(
      `--leader-elect-renew-deadline: Invalid value: "${seconds(renewDeadlineMs)}": must be less than --leader-elect-lease-duration (${seconds(leaseDurationMs)})`,
    );
  }
  if (retryPeriodMs >= renewDeadlineMs) {
    errors.push(
      `--leader-elect-retry-period: Invalid value: "${seconds(retryPeriodMs)}": must be less than --leader-elect-renew-deadline (${seconds(renewDeadlineMs)})`,
    );
  }
  return errors;
}

/** The default identity of a candidate: the hostname plus a random suffix, unique per process. */
export function defaultLeaderIdentity(): string {
  return `${hostname()}_${randomBytes(4).toString('hex')}`;
}

/**
 * What a candidate should do with the lease it just read (undefined: the lease does not exist).
 * - `create`: no lease yet, create it holding it;
 * - `renew`: we hold it, write a fresh renewTime;
 * - `take`: free or expired, write ourselves as holder (a new term);
 * - `wait`: someone else holds a valid lease.
 */
export type LeaseAction = 'create' | 'renew' | 'take' | 'wait';

/**
 * Decides the {@link LeaseAction}. Expiry is judged by when this process first observed the
 * current lease record (`observedAtMs`, local clock), never by the renewTime written by another
 * machine's clock.
 */
export function decideLeaseAction(
  lease: V1Lease | undefined,
  identity: string,
  nowMs: number,
  observedAtMs: number,
  leaseDurationMs: number,
): LeaseAction {
  if (lease === undefined) {
    return 'create';
  }
  const holder = lease.spec?.holderIdentity ?? '';
  if (holder === identity) {
    return 'renew';
  }
  if (holder === '') {
    return 'take';
  }
  const durationMs = (lease.spec?.leaseDurationSeconds ?? leaseDurationMs / 1000) * 1000;
  return nowMs - observedAtMs >= durationMs ? 'take' : 'wait';
}

/**
 * The spec to write for `action` (not `wait`): renewing keeps the term's acquireTime and
 * transition count; taking over starts a new term and counts a transition.
 */
export function nextLeaseSpec(
  previous: V1Lease | undefined,
  action: Exclude<LeaseAction, 'wait'>,
  identity: string,
  leaseDurationMs: number,
  now: Date,
): NonNullable<V1Lease['spec']> {
  const spec = previous?.spec ?? {};
  const renewTime = new V1MicroTime(now.getTime());
  const base = {
    ...spec,
    holderIdentity: identity,
    leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
    renewTime,
  };
  if (action === 'renew') {
    return { ...base, acquireTime: spec.acquireTime ?? renewTime };
  }
  const hadHolder = (spec.holderIdentity ?? '') !== '';
  return {
    ...base,
    acquireTime: renewTime,
    leaseTransitions: (spec.leaseTransitions ?? 0) + (previous !== undefined && hadHolder ? 1 : 0),
  };
}

/** Options of {@link LeaderElector}. */
export interface LeaderElectorOptions {
  /** Credentials for the coordination.k8s.io API. */
  kubeConfig: KubeConfig;
  /** Namespace of the Lease. */
  namespace: string;
  /** Name of the Lease (`--leader-election-id`). */
  leaseName: string;
  /** This candidate's identity; {@link defaultLeaderIdentity} when absent. */
  identity?: string;
  /** Timing; {@link DEFAULT_LEADER_ELECTION_TIMING} when absent. */
  timing?: LeaderElectionTiming;
  /** Receives acquisitions, renew failures and losses. */
  logger: Logger;
  /**
   * Called once when this candidate becomes leader. Leadership may be lost later, which
   * {@link LeaderElector.run} reports by resolving `'lost'`.
   */
  onStartedLeading: () => void;
  /** Called whenever the observed holder changes (including to this candidate), for logs and status. */
  onNewLeader?: (identity: string) => void;
}

/** Why {@link LeaderElector.run} returned. */
export type LeaderElectionOutcome = 'stopped' | 'lost';

/**
 * One candidate for a Lease. {@link run} campaigns until leader, renews until leadership is lost
 * or `signal` aborts, and reports which. The controllers it guards start in `onStartedLeading` and
 * must stop when `run` resolves `'lost'`; the process then exits, as kube-controller-manager does,
 * because controllers cannot be trusted to restart from a half-run state.
 */
export class LeaderElector {
  /** This candidate's identity as written to `spec.holderIdentity`. */
  readonly identity: string;
  readonly #api: CoordinationV1Api;
  readonly #namespace: string;
  readonly #leaseName: string;
  readonly #timing: LeaderElectionTiming;
  readonly #logger: Logger;
  readonly #onStartedLeading: () => void;
  readonly #onNewLeader: ((identity: string) => void) | undefined;
  #leader = false;
  #observedResourceVersion = '';
  #observedAtMs = 0;
  #observedHolder = '';
  #lastLease: V1Lease | undefined;

  constructor(options: LeaderElectorOptions) {
    this.identity = options.identity ?? defaultLeaderIdentity();
    this.#api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.#namespace = options.namespace;
    this.#leaseName = options.leaseName;
    this.#timing = options.timing ?? DEFAULT_LEADER_ELECTION_TIMING;
    this.#logger = options.logger.child({
      lease: `${options.namespace}/${options.leaseName}`,
      identity: this.identity,
    });
    this.#onStartedLeading = options.onStartedLeading;
    this.#onNewLeader = options.onNewLeader;
  }

  /** True between acquiring the lease and losing or releasing it. */
  isLeader(): boolean {
    return this.#leader;
  }

  /**
   * Campaigns, then renews. Resolves `'stopped'` when `signal` aborts (before or during
   * leadership; the lease is not released here, see {@link release}) and `'lost'` when a renewal
   * did not succeed within the renew deadline or another candidate took the lease.
   */
  async run(signal: AbortSignal): Promise<LeaderElectionOutcome> {
    this.#logger.info('campaigning for leadership');
    while (!signal.aborted) {
      if (await this.#tryAcquireOrRenew(this.#timing.retryPeriodMs)) {
        break;
      }
      await this.#pause(Math.min(this.#timing.retryPeriodMs, this.#untilObservedExpiryMs()), signal);
    }
    if (signal.aborted) {
      return 'stopped';
    }
    this.#leader = true;
    this.#logger.info('became leader');
    this.#onStartedLeading();
    return this.#renewLoop(signal);
  }

  async #renewLoop(signal: AbortSignal): Promise<LeaderElectionOutcome> {
    let lastRenewMs = Date.now();
    while (!signal.aborted) {
      await this.#pause(this.#timing.retryPeriodMs, signal);
      if (signal.aborted) {
        break;
      }
      // The attempt may not outlive the renew deadline: a hung request must not keep us leading.
      const remainingMs = lastRenewMs + this.#timing.renewDeadlineMs - Date.now();
      const renewed = remainingMs > 0 && (await this.#tryAcquireOrRenew(remainingMs));
      if (renewed) {
        lastRenewMs = Date.now();
        continue;
      }
      if (this.#observedHolder !== '' && this.#observedHolder !== this.identity) {
        this.#leader = false;
        this.#logger.warn('lost leadership: lease taken by another candidate', {
          holder: this.#observedHolder,
        });
        return 'lost';
      }
      if (Date.now() - lastRenewMs >= this.#timing.renewDeadlineMs) {
        this.#leader = false;
        this.#logger.error('lost leadership: could not renew the lease within the renew deadline', {
          renewDeadlineMs: this.#timing.renewDeadlineMs,
        });
        return 'lost';
      }
    }
    return 'stopped';
  }

  /**
   * Gives the lease up so a standby can take it at its next retry instead of waiting out the
   * lease duration: clears the holder and shortens the duration to one second (client-go does the
   * same). Only when this candidate still holds it; failures are logged, never thrown, because
   * this runs during shutdown.
   */
  async release(timeoutMs = this.#timing.renewDeadlineMs): Promise<void> {
    if (!this.#leader && this.#lastLease?.spec?.holderIdentity !== this.identity) {
      return;
    }
    this.#leader = false;
    try {
      const lease = await this.#withTimeout(
        this.#api.readNamespacedLease({ name: this.#leaseName, namespace: this.#namespace }),
        timeoutMs,
      );
      if (lease.spec?.holderIdentity !== this.identity) {
        return;
      }
      const now = new V1MicroTime();
      await this.#withTimeout(
        this.#api.replaceNamespacedLease({
          name: this.#leaseName,
          namespace: this.#namespace,
          body: {
            ...lease,
            spec: {
              ...lease.spec,
              holderIdentity: '',
              leaseDurationSeconds: 1,
              renewTime: now,
              acquireTime: now,
            },
          },
        }),
        timeoutMs,
      );
      this.#logger.info('released the lease');
    } catch (error) {
      this.#logger.warn('could not release the lease; a standby takes over when it expires', {
        error: describeError(error),
      });
    }
  }

  /** One read-decide-write round. True when this candidate holds a freshly written lease. */
  async #tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    let lease: V1Lease | undefined;
    try {
      lease = await this.#withTimeout(
        this.#api.readNamespacedLease({ name: this.#leaseName, namespace: this.#namespace }),
        timeoutMs,
      );
    } catch (error) {
      if (apiStatusCode(error) !== 404) {
        this.#logger.warn('could not read the lease', { error: describeError(error) });
        return false;
      }
    }
    const now = Date.now();
    this.#observe(lease, now);
    const action = decideLeaseAction(
      lease,
      this.identity,
      now,
      this.#observedAtMs,
      this.#timing.leaseDurationMs,
    );
    if (action === 'wait') {
      return false;
    }
    const spec = nextLeaseSpec(lease, action, this.identity, this.#timing.leaseDurationMs, new Date(now));
    try {
      const written =
        action === 'create'
          ? await this.#withTimeout(
              this.#api.createNamespacedLease({
                namespace: this.#namespace,
                body: {
                  apiVersion: 'coordination.k8s.io/v1',
                  kind: 'Lease',
                  metadata: { name: this.#leaseName, namespace: this.#namespace },
                  spec,
                },
              }),
              timeoutMs,
            )
          : await this.#withTimeout(
              // Carrying the read resourceVersion makes this a compare-and-swap.
              this.#api.replaceNamespacedLease({
                name: this.#leaseName,
                namespace: this.#namespace,
                body: { ...lease, spec },
              }),
              timeoutMs,
            );
      this.#observe(written, Date.now());
      return true;
    } catch (error) {
      const status = apiStatusCode(error);
      if (status === 409) {
        this.#logger.debug('lost the race for the lease', { action });
      } else {
        this.#logger.warn('could not write the lease', { action, error: describeError(error) });
      }
      return false;
    }
  }

  #observe(lease: V1Lease | undefined, nowMs: number): void {
    this.#lastLease = lease;
    const resourceVersion = lease?.metadata?.resourceVersion ?? '';
    if (resourceVersion !== this.#observedResourceVersion) {
      this.#observedResourceVersion = resourceVersion;
      this.#observedAtMs = nowMs;
    }
    const holder = lease?.spec?.holderIdentity ?? '';
    if (holder !== this.#observedHolder) {
      this.#observedHolder = holder;
      if (holder !== '') {
        this.#logger.info('observed a new leader', { holder });
        this.#onNewLeader?.(holder);
      }
    }
  }

  /**
   * Time until the lease we are waiting on expires by our own observation, so a standby tries at
   * that moment rather than up to one retry period later.
   */
  #untilObservedExpiryMs(): number {
    const durationMs = (this.#lastLease?.spec?.leaseDurationSeconds ?? 0) * 1000;
    return Math.max(10, this.#observedAtMs + durationMs - Date.now() + 10);
  }

  async #pause(ms: number, signal: AbortSignal): Promise<void> {
    // Jitter keeps two standbys that saw the same expiry from hammering the lease in lockstep.
    const jittered = ms * (1 + Math.random() * 0.2);
    await sleep(jittered, undefined, { signal }).catch(() => undefined);
  }

  #withTimeout<V>(promise: Promise<V>, timeoutMs: number): Promise<V> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`lease request took longer than ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}
