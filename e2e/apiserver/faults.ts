/**
 * Fault injection for tests: the failures a real API server shows under load or restart (dropped
 * watches, 500s, 429s with Retry-After, latency, compacted history, a stall), on demand.
 */

/** An injected failure of one request. */
export interface InjectedFailure {
  code: 500 | 429;
  retryAfterSeconds?: number;
}

/** What the server does when a fault is triggered; the server wires these in. */
export interface FaultHooks {
  dropWatches(): void;
  compactHistory(): void;
  /** Called when a pause ends, so held watch events are flushed. */
  resumed(): void;
}

/** Handle tests use to inject faults into a running server. */
export class FaultInjector {
  private readonly hooks: FaultHooks;
  private failures: InjectedFailure[] = [];
  private latency = 0;
  private pausedUntil: Promise<void> | undefined;
  private release: (() => void) | undefined;

  constructor(hooks: FaultHooks) {
    this.hooks = hooks;
  }

  /** Ends every open watch cleanly, as a restarting API server or a load balancer idle timeout would. */
  dropWatches(): void {
    this.hooks.dropWatches();
  }

  /** Makes the next `count` resource requests (including watches) fail with `code`. */
  failNext(count: number, failure: InjectedFailure): void {
    for (let i = 0; i < count; i++) this.failures.push({ ...failure });
  }

  /** Delays every resource request by `ms` milliseconds (0 turns latency off). */
  setLatency(ms: number): void {
    this.latency = Math.max(0, ms);
  }

  /** Forgets the event history: watches and continue tokens from before now get 410 Gone. */
  compactHistory(): void {
    this.hooks.compactHistory();
  }

  /** Holds every request and watch event until {@link resume}. */
  pause(): void {
    if (this.pausedUntil !== undefined) return;
    this.pausedUntil = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  /** Releases everything held by {@link pause}. */
  resume(): void {
    const release = this.release;
    this.pausedUntil = undefined;
    this.release = undefined;
    release?.();
    this.hooks.resumed();
  }

  /** Whether the server is paused. */
  get paused(): boolean {
    return this.pausedUntil !== undefined;
  }

  /** Waits out pause and latency before a request is served; returns a failure to answer with, if one is due. */
  async beforeRequest(): Promise<InjectedFailure | undefined> {
    while (this.pausedUntil !== undefined) await this.pausedUntil;
    if (this.latency > 0) await new Promise((resolve) => setTimeout(resolve, this.latency));
    return this.failures.shift();
  }
}
