/**
 * Paces the agent's syncs, after upstream's BoundedFrequencyRunner as kube-proxy uses it:
 *
 * - nothing runs until both the Service and the EndpointSlice caches have synced, so a restarted
 *   agent never writes rules from half a picture (which would drop live Services' rules);
 * - changes are coalesced: at most one sync starts per `minSyncPeriodMs`, and never two at once;
 * - a full sync runs at least every `syncPeriodMs`, and whenever asked (start-up, canary lost);
 * - a failed sync is retried as a full sync with exponential backoff from `minSyncPeriodMs` up to
 *   `syncPeriodMs`, since the kernel may hold any mix of old and new rules after a failure.
 */

/** The timer functions the runner uses; tests substitute a manual clock. */
export interface RunnerClock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The process clock. */
export const SYSTEM_CLOCK: RunnerClock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** What a sync is asked to do. */
export interface SyncRequest {
  /** Rewrite everything (true) or only what changed since the last successful sync. */
  readonly full: boolean;
}

/** Options of a {@link SyncRunner}. */
export interface SyncRunnerOptions {
  /** `--min-sync-period` (default 1 s). */
  readonly minSyncPeriodMs?: number;
  /** `--sync-period` (default 30 s). */
  readonly syncPeriodMs?: number;
  /** Performs one sync; a rejection counts as a failed apply. */
  readonly sync: (request: SyncRequest) => Promise<void>;
  /** Called with each failure (for logs and metrics); the runner retries on its own. */
  readonly onError?: (error: unknown) => void;
  readonly clock?: RunnerClock;
}

/** Rate-limited, cache-gated sync loop. */
export class SyncRunner {
  readonly #minSyncPeriodMs: number;
  readonly #syncPeriodMs: number;
  readonly #sync: (request: SyncRequest) => Promise<void>;
  readonly #onError: (error: unknown) => void;
  readonly #clock: RunnerClock;
  #servicesSynced = false;
  #endpointSlicesSynced = false;
  #running = false;
  #stopped = false;
  #pending = false;
  #fullNeeded = true;
  #lastStart = Number.NEGATIVE_INFINITY;
  #lastFull = Number.NEGATIVE_INFINITY;
  #failures = 0;
  #timer: unknown = null;
  #timerAt = Number.POSITIVE_INFINITY;
  #idle: Promise<void> = Promise.resolve();

  constructor(options: SyncRunnerOptions) {
    this.#minSyncPeriodMs = options.minSyncPeriodMs ?? 1000;
    this.#syncPeriodMs = options.syncPeriodMs ?? 30_000;
    this.#sync = options.sync;
    this.#onError = options.onError ?? (() => {});
    this.#clock = options.clock ?? SYSTEM_CLOCK;
  }

  /** Reports that the Service informer has listed everything; see the class comment. */
  servicesSynced(): void {
    this.#servicesSynced = true;
    this.requestSync();
  }

  /** Reports that the EndpointSlice informer has listed everything. */
  endpointSlicesSynced(): void {
    this.#endpointSlicesSynced = true;
    this.requestSync();
  }

  /** Something changed: sync as soon as the rate limit allows. */
  requestSync(): void {
    this.#pending = true;
    this.#schedule();
  }

  /** The next sync must be full (e.g. the canary chain vanished). */
  requestFullSync(): void {
    this.#fullNeeded = true;
    this.requestSync();
  }

  /** Consecutive failed syncs; 0 after a success. */
  get failures(): number {
    return this.#failures;
  }

  /** Resolves once the sync in flight (if any) has finished; for orderly shutdown and tests. */
  whenIdle(): Promise<void> {
    return this.#idle;
  }

  /** Cancels timers; a sync in flight finishes but nothing new starts. */
  stop(): void {
    this.#stopped = true;
    this.#cancelTimer();
  }

  #cancelTimer(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  #schedule(): void {
    if (this.#stopped || this.#running || !this.#servicesSynced || !this.#endpointSlicesSynced) return;
    const now = this.#clock.now();
    const backoff =
      this.#failures === 0
        ? this.#minSyncPeriodMs
        : Math.min(this.#minSyncPeriodMs * 2 ** (this.#failures - 1), this.#syncPeriodMs);
    const earliest = this.#lastStart + backoff;
    const periodic = this.#lastFull + this.#syncPeriodMs;
    const at = this.#pending ? Math.max(now, earliest) : Math.max(now, periodic);
    if (at >= this.#timerAt) return;
    this.#cancelTimer();
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.#run();
    }, at - now);
  }

  #run(): void {
    const now = this.#clock.now();
    const full = this.#fullNeeded || now - this.#lastFull >= this.#syncPeriodMs;
    this.#running = true;
    this.#pending = false;
    this.#lastStart = now;
    this.#fullNeeded = false;
    this.#idle = this.#sync({ full }).then(
      () => {
        this.#failures = 0;
        if (full) this.#lastFull = now;
        this.#finish();
      },
      (error: unknown) => {
        this.#failures += 1;
        this.#fullNeeded = true;
        this.#pending = true;
        this.#onError(error);
        this.#finish();
      },
    );
  }

  #finish(): void {
    this.#running = false;
    this.#schedule();
  }
}
