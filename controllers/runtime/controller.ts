import { controllerLogger, errorFields, keyLogger, type Logger } from './logging.ts';
import { type ControllerMetrics, controllerMetrics } from './metrics.ts';
import { type Clock, DEFAULT_SHUTDOWN_TIMEOUT_MS, WorkQueue } from './workqueue.ts';

/**
 * What a reconcile asks of the runner once it has succeeded. Returning `undefined` (or `{}`)
 * means "done until something changes".
 */
export interface ReconcileResult {
  /**
   * Reconcile this key again after this many milliseconds, even if nothing changes; for work
   * that depends on time (a grace period running out). Values of 0 or less are ignored.
   */
  requeueAfter?: number;
}

/**
 * The contract of every controller's logic. Reconciliation is level-triggered: `reconcile` gets
 * only the key (`namespace/name`), never the event that caused it, and reads the current state
 * from the informer caches. A deleted object shows up as a key whose object is gone.
 *
 * A thrown error retries the key with per-key exponential backoff; throw {@link TerminalError}
 * for a failure that retrying cannot fix.
 */
export interface Reconciler {
  /** Brings the world in line with the object named by `key`. Must be idempotent. */
  reconcile(key: string): Promise<ReconcileResult | undefined>;
}

/**
 * A reconcile failure that retrying will not fix (an object that can never be valid until a user
 * edits it, and the edit triggers a new reconcile anyway). The runner logs it, counts it as an
 * error and drops the key instead of backing off.
 */
export class TerminalError extends Error {
  /**
   * @param message what is wrong, phrased for the user who owns the object
   * @param options `cause`: the underlying error, if any
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

/** Options of {@link Controller}. */
export interface ControllerOptions {
  /** Controller name; the `controller` label of its metrics and field of its logs. */
  name: string;
  /** The logic run for each key. */
  reconciler: Reconciler;
  /** Logger of the process; the controller logs through a child carrying its name. */
  logger: Logger;
  /** Keys reconciled at once (default 1). A key is never reconciled twice at once regardless. */
  concurrency?: number;
  /** First retry delay after a failure, in ms (default 5). */
  baseBackoffMs?: number;
  /** Retry delay cap, in ms (default 1000 s). */
  maxBackoffMs?: number;
  /** Time source for delays and backoff; real timers when absent. */
  clock?: Clock;
}

/**
 * Runs a {@link Reconciler} over a keyed {@link WorkQueue}: event handlers call {@link enqueue},
 * workers call `reconcile`, and the result or error decides what happens to the key next.
 * Every reconcile is timed and counted under the controller's name.
 *
 * Keys enqueued before {@link run} wait, so informers can be started and synced first. After
 * {@link stop} the controller cannot be run again; a replica that loses leadership exits and
 * starts over.
 */
export class Controller {
  /** The controller name given in the options. */
  readonly name: string;
  readonly #reconciler: Reconciler;
  readonly #logger: Logger;
  readonly #metrics: ControllerMetrics;
  readonly #queue: WorkQueue;

  /** @param options name, reconciler, logger, concurrency and backoff */
  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.#reconciler = options.reconciler;
    this.#logger = controllerLogger(options.logger, options.name);
    this.#metrics = controllerMetrics(options.name);
    this.#queue = new WorkQueue((key) => this.#reconcileKey(key), {
      concurrency: options.concurrency,
      baseBackoffMs: options.baseBackoffMs,
      maxBackoffMs: options.maxBackoffMs,
      clock: options.clock,
      metrics: this.#metrics,
    });
  }

  /** Asks for `key` to be reconciled; repeated calls before it runs collapse into one. */
  enqueue(key: string): void {
    this.#queue.add(key);
  }

  /** Asks for `key` to be reconciled after `delayMs`, e.g. to batch bursts of pod updates. */
  enqueueAfter(key: string, delayMs: number): void {
    this.#queue.addAfter(key, delayMs);
  }

  /** Keys waiting to be reconciled. */
  get queueLength(): number {
    return this.#queue.length;
  }

  /** Starts reconciling; keys enqueued earlier start now. */
  run(): void {
    this.#logger.info('starting workers');
    this.#queue.start();
  }

  /**
   * Resolves when no key is waiting or being reconciled; scheduled retries and requeues do not
   * count. For tests and benchmarks that need to know a burst of keys has gone through.
   */
  whenIdle(): Promise<void> {
    return this.#queue.whenIdle();
  }

  /**
   * Stops accepting keys, cancels scheduled retries, and waits up to `timeoutMs` for the keys in
   * flight and already waiting to finish. Resolves `true` when they did.
   */
  async stop(timeoutMs: number = DEFAULT_SHUTDOWN_TIMEOUT_MS): Promise<boolean> {
    this.#logger.info('stopping workers', { waiting: this.#queue.length, inFlight: this.#queue.inFlight });
    const drained = await this.#queue.shutDown(timeoutMs);
    if (drained) this.#logger.info('workers stopped');
    else this.#logger.warn('workers stopped before the queue drained', { timeoutMs });
    return drained;
  }

  async #reconcileKey(key: string): Promise<void> {
    const startedAt = performance.now();
    try {
      const result = await this.#reconciler.reconcile(key);
      this.#queue.forget(key);
      const requeueAfter = result?.requeueAfter;
      if (requeueAfter !== undefined && requeueAfter > 0) this.#queue.addAfter(key, requeueAfter);
    } catch (caught) {
      this.#metrics.countReconcileError();
      const log = keyLogger(this.#logger, key);
      if (caught instanceof TerminalError) {
        this.#queue.forget(key);
        log.error('reconcile failed and will not be retried', errorFields(caught));
      } else if (this.#queue.shuttingDown) {
        log.error('reconcile failed during shutdown; not retried', errorFields(caught));
      } else {
        const retryInMs = this.#queue.addRateLimited(key);
        log.error('reconcile failed; retrying with backoff', {
          ...errorFields(caught),
          retryInMs,
          failures: this.#queue.numRequeues(key),
        });
      }
    } finally {
      this.#metrics.observeReconcileSeconds((performance.now() - startedAt) / 1000);
    }
  }
}
