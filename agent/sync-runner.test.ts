import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as settle } from 'node:timers/promises';
import { type RunnerClock, type SyncRequest, SyncRunner } from './sync-runner.ts';

/** A clock that moves only when told to, running due timers in order. */
class ManualClock implements RunnerClock {
  #now = 0;
  #nextId = 0;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      await settle();
      const due = [...this.#timers]
        .filter(([, timer]) => timer.at <= target)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.#now = due[1].at;
      due[1].callback();
    }
    this.#now = target;
    await settle();
  }
}

interface Harness {
  clock: ManualClock;
  runner: SyncRunner;
  calls: { at: number; full: boolean }[];
  /** Outcomes of the next syncs, in order; a sync beyond the list succeeds at once. */
  outcomes: (Error | Promise<void>)[];
}

function harness(onError?: (error: unknown) => void): Harness {
  const clock = new ManualClock();
  const calls: Harness['calls'] = [];
  const outcomes: Harness['outcomes'] = [];
  const runner = new SyncRunner({
    minSyncPeriodMs: 1000,
    syncPeriodMs: 30_000,
    clock,
    ...(onError === undefined ? {} : { onError }),
    sync: (request: SyncRequest) => {
      calls.push({ at: clock.now(), full: request.full });
      const outcome = outcomes.shift();
      if (outcome instanceof Error) return Promise.reject(outcome);
      return outcome ?? Promise.resolve();
    },
  });
  return { clock, runner, calls, outcomes };
}

describe('SyncRunner', () => {
  test('never syncs before both Services and EndpointSlices are synced; then a full sync at once', async () => {
    const { clock, runner, calls } = harness();
    runner.requestSync();
    runner.servicesSynced();
    await clock.advance(5000);
    assert.deepEqual(calls, []);
    runner.endpointSlicesSynced();
    await clock.advance(0);
    assert.deepEqual(calls, [{ at: 5000, full: true }]);
    runner.stop();
  });

  test('a burst of changes is coalesced into one partial sync per min-sync-period', async () => {
    const { clock, runner, calls } = harness();
    runner.servicesSynced();
    runner.endpointSlicesSynced();
    await clock.advance(100);
    for (let i = 0; i < 10; i++) {
      runner.requestSync();
      await clock.advance(50);
    }
    await clock.advance(2000);
    assert.deepEqual(calls, [
      { at: 0, full: true },
      { at: 1000, full: false },
    ]);
    runner.stop();
  });

  test('a full resync runs every sync-period without changes', async () => {
    const { clock, runner, calls } = harness();
    runner.servicesSynced();
    runner.endpointSlicesSynced();
    await clock.advance(61_000);
    assert.deepEqual(calls, [
      { at: 0, full: true },
      { at: 30_000, full: true },
      { at: 60_000, full: true },
    ]);
    runner.stop();
  });

  test('a failed sync is retried in full with exponential backoff, reset by a success', async () => {
    const errors: unknown[] = [];
    const { clock, runner, calls, outcomes } = harness((error) => errors.push(error));
    outcomes.push(new Error('iptables-restore: line 7 failed'), new Error('again'), new Error('and again'));
    runner.servicesSynced();
    runner.endpointSlicesSynced();
    await clock.advance(10_000);
    assert.deepEqual(calls, [
      { at: 0, full: true },
      { at: 1000, full: true },
      { at: 3000, full: true },
      { at: 7000, full: true },
    ]);
    assert.equal(errors.length, 3);
    assert.equal(runner.failures, 0);
    runner.requestSync();
    await clock.advance(0);
    assert.deepEqual(calls.at(-1), { at: 10_000, full: false });
    runner.stop();
  });

  test('syncs never overlap: changes during a slow sync run after it, as one sync', async () => {
    const { clock, runner, calls, outcomes } = harness();
    let finish = () => {};
    outcomes.push(Promise.resolve(), new Promise<void>((resolve) => (finish = resolve)));
    runner.servicesSynced();
    runner.endpointSlicesSynced();
    await clock.advance(1000);
    runner.requestSync();
    await clock.advance(1000);
    assert.equal(calls.length, 2);
    runner.requestSync();
    runner.requestSync();
    await clock.advance(5000);
    assert.equal(calls.length, 2, 'no second sync while one runs');
    finish();
    await runner.whenIdle();
    await clock.advance(0);
    assert.deepEqual(calls.at(-1), { at: 7000, full: false });
    assert.equal(calls.length, 3);
    runner.stop();
  });

  test('requestFullSync makes the next sync full', async () => {
    const { clock, runner, calls } = harness();
    runner.servicesSynced();
    runner.endpointSlicesSynced();
    await clock.advance(2000);
    runner.requestFullSync();
    await clock.advance(0);
    assert.deepEqual(calls, [
      { at: 0, full: true },
      { at: 2000, full: true },
    ]);
    runner.stop();
  });
});
