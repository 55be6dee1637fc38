import PQueue from 'p-queue';
import type { ControllerMetrics } from './metrics.ts';

/**
 * The time source of a {@link WorkQueue}: real timers in production, a fake clock in tests so that
 * backoff and delays can be checked without waiting for them.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale; only differences are used. */
  now(): number;
  /** Calls `callback` once after `delayMs`; the returned function cancels it if it has not run. */
  schedule(callback: () => void, delayMs: number): () => void;
}

/** The {@link Clock} of the running process. */
export const systemClock: Clock = {
  now: () => performance.now(),
  schedule(callback, delayMs) {
    const timer = setTimeout(callback, delayMs);
    return () => clearTimeout(timer);
  },
};

/**
 * A {@link Clock} that moves only when told to, for tests of delays, backoff and shutdown
 * timeouts that must neither wait in real time nor depend on the machine's speed.
 */
export class ManualClock implements Clock {
  #now = 0;
  #nextId = 0;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.#now;
  }

  schedule(callback: () => void, delayMs: number): () => void {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, delayMs), callback });
    return () => this.#timers.delete(id);
  }

  /** Timers scheduled and neither fired nor cancelled. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** When the earliest pending timer is due, or `undefined` when none is pending. */
  nextTimerAt(): number | undefined {
    let earliest: number | undefined;
    for (const timer of this.#timers.values()) {
      if (earliest === undefined || timer.at < earliest) earliest = timer.at;
    }
    return earliest;
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way in time order (ties in the
   * order they were scheduled), including timers that fired callbacks schedule within the window.
   * Returns how many fired. Callbacks run synchronously; work they start as promises runs after.
   */
  advance(ms: number): number {
    const until = this.#now + ms;
    let fired = 0;
    for (;;) {
      let dueId: number | undefined;
      let dueAt = Number.POSITIVE_INFINITY;
      for (const [id, timer] of this.#timers) {
        if (timer.at <= until && timer.at < dueAt) {
          dueId = id;
          dueAt = timer.at;
        }
      }
      if (dueId === undefined) break;
      const timer = this.#timers.get(dueId)!;
      this.#timers.delete(dueId);
      this.#now = dueAt;
      timer.callback();
      fired++;
    }
    this.#now = until;
    return fired;
  }
}

/** First retry delay after a failure: the client-go default for controllers. */
export const DEFAULT_BASE_BACKOFF_MS = 5;

/** Longest retry delay: the client-go default (1000 s), so a broken object is still retried. */
export const DEFAULT_MAX_BACKOFF_MS = 1_000_000;

/** How long {@link WorkQueue.shutDown} waits for work to finish when not told otherwise. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;

/**
 * The delay before retry number `failures + 1` of a key: `baseMs · 2^failures`, capped at `maxMs`.
 * `failures` is how many times in a row the key has already failed.
 */
export function backoffDelayMs(failures: number, baseMs: number, maxMs: number): number {
  // 2 ** n overflows to Infinity for large n, which Math.min turns back into the cap.
  return Math.min(baseMs * 2 ** failures, maxMs);
}

/**
 * Processes one key. It runs for at most one call per key at a time. A rejection counts as a
 * failure and is retried with backoff, so a bug in a handler never loses a key; handlers that
 * want other behaviour catch their own errors and call {@link WorkQueue.addRateLimited},
 * {@link WorkQueue.forget} or {@link WorkQueue.addAfter} themselves.
 */
export type KeyHandler = (key: string) => Promise<void>;

/** Options of {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** How many keys are processed at once (at least 1; default 1). */
  concurrency?: number;
  /** First backoff delay in ms; default {@link DEFAULT_BASE_BACKOFF_MS}. */
  baseBackoffMs?: number;
  /** Backoff cap in ms; default {@link DEFAULT_MAX_BACKOFF_MS}. */
  maxBackoffMs?: number;
  /** Time source; default {@link systemClock}. */
  clock?: Clock;
  /** Where depth, adds and retries are counted; nothing is recorded when absent. */
  metrics?: ControllerMetrics;
}

/**
 * First-in first-out list of keys. A plain array's `shift()` copies the whole array once it is
 * large, which would make each dequeue O(n) with 100k keys waiting; this keeps a head index and
 * compacts only when the consumed prefix is the larger half, so both ends are amortised O(1).
 */
class KeyFifo {
  #items: (string | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(key: string): void {
    this.#items.push(key);
  }

  shift(): string | undefined {
    if (this.#head === this.#items.length) return undefined;
    const key = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head++;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return key;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

interface DelayedAdd {
  readyAt: number;
  cancel: () => void;
}

/**
 * A keyed work queue in the client-go design. Keys, not events, are queued: a key waiting to be
 * processed is held once however often it is added, and a key is never processed by two workers
 * at once. A key added while it is being processed is marked and processed once more after the
 * current run, so the handler always sees the latest state (level-triggered). Failed keys come
 * back after a per-key exponential backoff ({@link addRateLimited}) until {@link forget} resets
 * it. Up to `concurrency` keys run at once, on a `p-queue` pool.
 *
 * Every operation is O(1) per key, so a full relist that adds 100k keys stays cheap.
 *
 * Keys added before {@link start} wait until it is called, so informers can fill the queue
 * while their caches sync.
 */
export class WorkQueue {
  readonly #handler: KeyHandler;
  readonly #concurrency: number;
  readonly #baseBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #clock: Clock;
  readonly #metrics: ControllerMetrics | undefined;
  readonly #pool: PQueue;

  /** Keys that need processing (client-go's dirty set), including ones marked while in flight. */
  readonly #waiting = new Set<string>();
  /** Keys being processed right now. */
  readonly #processing = new Set<string>();
  /** The order in which waiting keys that are not in flight get processed. */
  readonly #fifo = new KeyFifo();
  /** Consecutive failures per key, driving the backoff. */
  readonly #failures = new Map<string, number>();
  /** Pending `addAfter` timers, at most one per key: the earliest wins. */
  readonly #delayed = new Map<string, DelayedAdd>();

  #workers = 0;
  #started = false;
  #shuttingDown = false;
  #closed = false;

  /**
   * @param handler processes one key; see {@link KeyHandler}
   * @param options concurrency, backoff, clock and metrics
   */
  constructor(handler: KeyHandler, options: WorkQueueOptions = {}) {
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`concurrency: Invalid value: ${concurrency}: must be an integer of at least 1`);
    }
    this.#handler = handler;
    this.#concurrency = concurrency;
    this.#baseBackoffMs = options.baseBackoffMs ?? DEFAULT_BASE_BACKOFF_MS;
    this.#maxBackoffMs = options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
    this.#clock = options.clock ?? systemClock;
    this.#metrics = options.metrics;
    this.#pool = new PQueue({ concurrency });
  }

  /** Keys waiting to be processed, counting a key marked while in flight once. */
  get length(): number {
    return this.#waiting.size;
  }

  /** Keys being processed right now. */
  get inFlight(): number {
    return this.#processing.size;
  }

  /** Keys with a pending {@link addAfter} or backoff timer. */
  get delayed(): number {
    return this.#delayed.size;
  }

  /** True once {@link shutDown} has been called: adds are ignored from then on. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Starts processing; keys added before this call have been waiting and start now. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#startWorkers();
  }

  /** Queues `key` for processing, unless it is already waiting or the queue is shutting down. */
  add(key: string): void {
    if (this.#shuttingDown || this.#waiting.has(key)) return;
    this.#waiting.add(key);
    this.#metrics?.countAdd();
    this.#metrics?.setQueueDepth(this.#waiting.size);
    // An in-flight key stays only in the waiting set; the worker re-queues it when it finishes.
    if (this.#processing.has(key)) return;
    this.#fifo.push(key);
    this.#startWorkers();
  }

  /**
   * Queues `key` after `delayMs`. When the key already has a pending delayed add, the earlier of
   * the two is kept, so a short requeue is never postponed by a longer one.
   */
  addAfter(key: string, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const readyAt = this.#clock.now() + delayMs;
    const pending = this.#delayed.get(key);
    if (pending !== undefined) {
      if (pending.readyAt <= readyAt) return;
      pending.cancel();
    }
    const cancel = this.#clock.schedule(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.#delayed.set(key, { readyAt, cancel });
  }

  /**
   * Queues `key` after its next backoff delay and counts one more failure for it: 5 ms, 10 ms,
   * 20 ms, … up to the cap. Returns the delay chosen, for logging.
   */
  addRateLimited(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    const delayMs = backoffDelayMs(failures, this.#baseBackoffMs, this.#maxBackoffMs);
    if (this.#shuttingDown) return delayMs;
    this.#failures.set(key, failures + 1);
    this.#metrics?.countRetry();
    this.addAfter(key, delayMs);
    return delayMs;
  }

  /** Resets the backoff of `key`, after a success or when giving up on it. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** How many times in a row `key` has failed since it was last forgotten. */
  numRequeues(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /**
   * Resolves when no key is waiting or in flight. Keys on a delay timer do not count, so this can
   * resolve while a retry is still due; before {@link start} it resolves at once.
   */
  async whenIdle(): Promise<void> {
    await this.#pool.onIdle();
  }

  /**
   * Stops accepting keys, cancels pending delays and backoffs, and lets keys in flight and keys
   * already waiting finish. Resolves `true` when they did within `timeoutMs`, `false` when the
   * wait ran out; in that case keys not yet started are dropped, and keys still in flight are
   * left to finish on their own because a running promise cannot be interrupted. Once this
   * resolves, no key starts processing again.
   */
  async shutDown(timeoutMs: number = DEFAULT_SHUTDOWN_TIMEOUT_MS): Promise<boolean> {
    if (!this.#shuttingDown) {
      this.#shuttingDown = true;
      for (const pending of this.#delayed.values()) pending.cancel();
      this.#delayed.clear();
    }
    // Keys added before start() must not hold the drain up: nothing would ever process them.
    if (!this.#started) this.#dropWaiting();
    let cancelTimeout = (): void => {};
    const timedOut = new Promise<false>((resolve) => {
      cancelTimeout = this.#clock.schedule(() => resolve(false), timeoutMs);
    });
    const drained = await Promise.race([this.#pool.onIdle().then(() => true as const), timedOut]);
    cancelTimeout();
    this.#closed = true;
    this.#dropWaiting();
    return drained;
  }

  #dropWaiting(): void {
    this.#fifo.clear();
    for (const key of this.#waiting) {
      if (!this.#processing.has(key)) this.#waiting.delete(key);
    }
    this.#metrics?.setQueueDepth(this.#waiting.size);
  }

  #startWorkers(): void {
    if (!this.#started || this.#closed) return;
    while (this.#workers < this.#concurrency && this.#workers < this.#fifo.length) {
      this.#workers++;
      // The worker never rejects, and p-queue only rejects tasks removed by clear(), which is
      // never called, so the returned promise needs no handler.
      void this.#pool.add(() => this.#work());
    }
  }

  /**
   * One worker: processes keys until the queue runs dry. The worker count is lowered in the same
   * synchronous step that sees the queue empty, so an add racing with a worker's exit always
   * finds the count accurate and starts a new worker when needed.
   */
  async #work(): Promise<void> {
    for (;;) {
      const key = this.#closed ? undefined : this.#fifo.shift();
      if (key === undefined) {
        this.#workers--;
        return;
      }
      this.#waiting.delete(key);
      this.#processing.add(key);
      this.#metrics?.setQueueDepth(this.#waiting.size);
      try {
        await this.#handler(key);
      } catch {
        this.addRateLimited(key);
      }
      this.#processing.delete(key);
      if (this.#waiting.has(key)) {
        if (this.#closed) this.#waiting.delete(key);
        else this.#fifo.push(key);
      }
    }
  }
}
