import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { backoffDelayMs, ManualClock, WorkQueue } from './workqueue.ts';

/** Lets every promise chain started so far run to completion (workers, handlers, finally blocks). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A promise the test resolves by hand, to hold a handler in flight. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } {
  let resolve = (): void => {};
  let reject = (_error: Error): void => {};
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A handler that records each call and holds it until the test releases it. */
function heldHandler() {
  const calls: string[] = [];
  const running = new Map<string, ReturnType<typeof deferred>>();
  let overlapping = 0;
  let maxRunning = 0;
  const handler = async (key: string): Promise<void> => {
    calls.push(key);
    if (running.has(key)) {
      // Counted and let through at once, so a broken queue fails the test instead of hanging it.
      overlapping++;
      return;
    }
    const hold = deferred();
    running.set(key, hold);
    maxRunning = Math.max(maxRunning, running.size);
    try {
      await hold.promise;
    } finally {
      running.delete(key);
    }
  };
  const release = (key: string): void => {
    const hold = running.get(key);
    assert.ok(hold, `${key} is not in flight`);
    hold.resolve();
  };
  return {
    handler,
    calls,
    running,
    release,
    overlapping: () => overlapping,
    maxRunning: () => maxRunning,
  };
}

describe('backoffDelayMs', { timeout: 10_000 }, () => {
  test('doubles from the base and stops at the cap', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((failures) => backoffDelayMs(failures, 5, 1_000_000)),
      [5, 10, 20, 40, 80],
    );
    assert.equal(backoffDelayMs(17, 5, 1_000_000), 655_360);
    assert.equal(backoffDelayMs(18, 5, 1_000_000), 1_000_000);
    assert.equal(backoffDelayMs(5000, 5, 1_000_000), 1_000_000);
  });
});

describe('WorkQueue', { timeout: 10_000 }, () => {
  test('a key added many times before it runs is processed once', async () => {
    const seen: string[] = [];
    const queue = new WorkQueue(async (key) => {
      seen.push(key);
    });
    for (let i = 0; i < 5; i++) queue.add('default/web');
    queue.add('default/db');
    assert.equal(queue.length, 2);
    queue.start();
    await queue.whenIdle();
    assert.deepEqual(seen, ['default/web', 'default/db']);
  });

  test('keys are processed in the order they were first added', async () => {
    const seen: string[] = [];
    const queue = new WorkQueue(async (key) => {
      seen.push(key);
    });
    const keys = Array.from({ length: 5000 }, (_, i) => `ns/svc-${i}`);
    for (const key of keys) queue.add(key);
    for (const key of keys) queue.add(key);
    queue.start();
    await queue.whenIdle();
    assert.deepEqual(seen, keys);
  });

  test('a key is never processed by two workers at once', async () => {
    const held = heldHandler();
    const queue = new WorkQueue(held.handler, { concurrency: 4 });
    queue.start();
    queue.add('ns/a');
    await settle();
    assert.equal(held.running.size, 1);
    queue.add('ns/a');
    queue.add('ns/a');
    await settle();
    assert.equal(held.running.size, 1, 'the second add must wait for the first run to finish');
    held.release('ns/a');
    await settle();
    assert.equal(held.running.size, 1, 'the key added while in flight runs again');
    held.release('ns/a');
    await queue.whenIdle();
    assert.equal(held.overlapping(), 0);
    assert.deepEqual(held.calls, ['ns/a', 'ns/a']);
  });

  test('a key not added again while in flight is processed once', async () => {
    const held = heldHandler();
    const queue = new WorkQueue(held.handler, { concurrency: 2 });
    queue.start();
    queue.add('ns/a');
    await settle();
    held.release('ns/a');
    await queue.whenIdle();
    assert.deepEqual(held.calls, ['ns/a']);
  });

  test('no more than `concurrency` keys run at once', async () => {
    const held = heldHandler();
    const queue = new WorkQueue(held.handler, { concurrency: 3 });
    queue.start();
    for (let i = 0; i < 10; i++) queue.add(`ns/k${i}`);
    await settle();
    assert.equal(held.running.size, 3);
    while (held.running.size > 0) {
      for (const key of [...held.running.keys()]) held.release(key);
      await settle();
    }
    await queue.whenIdle();
    assert.equal(held.maxRunning(), 3);
    assert.equal(held.calls.length, 10);
  });

  test('keys wait until start()', async () => {
    const seen: string[] = [];
    const queue = new WorkQueue(async (key) => {
      seen.push(key);
    });
    queue.add('ns/a');
    await settle();
    assert.deepEqual(seen, []);
    queue.start();
    await queue.whenIdle();
    assert.deepEqual(seen, ['ns/a']);
  });

  test('addRateLimited backs off 5 ms, 10 ms, 20 ms … up to the cap, and forget resets it', () => {
    const queue = new WorkQueue(async () => {}, { clock: new ManualClock(), maxBackoffMs: 1000 });
    const delays = Array.from({ length: 10 }, () => queue.addRateLimited('ns/a'));
    assert.deepEqual(delays, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
    assert.equal(queue.numRequeues('ns/a'), 10);
    assert.equal(queue.addRateLimited('ns/b'), 5, 'backoff is per key');
    queue.forget('ns/a');
    assert.equal(queue.numRequeues('ns/a'), 0);
    assert.equal(queue.addRateLimited('ns/a'), 5);
  });

  test('a failed key comes back only after its backoff delay', async () => {
    const clock = new ManualClock();
    const runs: number[] = [];
    const queue = new WorkQueue(
      async () => {
        runs.push(clock.now());
        throw new Error('API server unavailable');
      },
      { clock },
    );
    queue.start();
    queue.add('ns/a');
    await settle();
    for (const delay of [5, 10, 20, 40]) {
      clock.advance(delay - 1);
      await settle();
      assert.equal(runs.length, 1 + Math.log2(delay / 5), `not retried before ${delay} ms`);
      clock.advance(1);
      await settle();
    }
    assert.deepEqual(runs, [0, 5, 15, 35, 75]);
    assert.equal(queue.numRequeues('ns/a'), 5);
  });

  test('addAfter delays the add, and the earlier of two delays wins', async () => {
    const clock = new ManualClock();
    const runs: Array<[string, number]> = [];
    const queue = new WorkQueue(
      async (key) => {
        runs.push([key, clock.now()]);
      },
      { clock },
    );
    queue.start();
    queue.addAfter('ns/a', 100);
    queue.addAfter('ns/a', 30);
    queue.addAfter('ns/a', 200);
    queue.addAfter('ns/b', 0);
    await settle();
    assert.deepEqual(runs, [['ns/b', 0]]);
    assert.equal(queue.delayed, 1);
    clock.advance(29);
    await settle();
    assert.equal(runs.length, 1);
    clock.advance(1);
    await settle();
    assert.deepEqual(runs, [
      ['ns/b', 0],
      ['ns/a', 30],
    ]);
    clock.advance(1000);
    await settle();
    assert.equal(runs.length, 2, 'the cancelled later delay does not fire');
  });

  test('a rejecting handler is retried with backoff', async () => {
    const clock = new ManualClock();
    let attempts = 0;
    const queue = new WorkQueue(
      async () => {
        attempts++;
        if (attempts < 3) throw new Error('conflict');
      },
      { clock },
    );
    queue.start();
    queue.add('ns/a');
    await settle();
    clock.advance(5);
    await settle();
    clock.advance(10);
    await settle();
    assert.equal(attempts, 3);
  });

  test('shutDown drains in-flight and waiting keys, cancels timers and ignores later adds', async () => {
    const clock = new ManualClock();
    const held = heldHandler();
    const queue = new WorkQueue(held.handler, { clock, concurrency: 1 });
    queue.start();
    queue.add('ns/a');
    queue.add('ns/b');
    queue.addAfter('ns/c', 10);
    queue.addRateLimited('ns/d');
    await settle();
    assert.deepEqual(held.calls, ['ns/a']);
    let result: boolean | undefined;
    const stopping = queue.shutDown(1000).then((drained) => {
      result = drained;
    });
    queue.add('ns/e');
    assert.equal(clock.pendingTimers, 1, 'only the shutdown timeout is left');
    held.release('ns/a');
    await settle();
    assert.equal(result, undefined, 'still draining while ns/b runs');
    held.release('ns/b');
    await stopping;
    assert.equal(result, true);
    assert.deepEqual(held.calls, ['ns/a', 'ns/b']);
    queue.add('ns/f');
    clock.advance(10_000);
    await settle();
    assert.deepEqual(held.calls, ['ns/a', 'ns/b']);
    assert.equal(clock.pendingTimers, 0);
  });

  test('shutDown gives up after its timeout and drops keys that have not started', async () => {
    const clock = new ManualClock();
    const held = heldHandler();
    const queue = new WorkQueue(held.handler, { clock, concurrency: 1 });
    queue.start();
    queue.add('ns/stuck');
    queue.add('ns/behind');
    await settle();
    const stopping = queue.shutDown(50);
    clock.advance(50);
    assert.equal(await stopping, false);
    held.release('ns/stuck');
    await settle();
    assert.deepEqual(held.calls, ['ns/stuck'], 'ns/behind never starts after shutdown');
    assert.equal(queue.length, 0);
  });

  test('rejects a concurrency below 1', () => {
    assert.throws(
      () => new WorkQueue(async () => {}, { concurrency: 0 }),
      /concurrency: Invalid value: 0: must be an integer of at least 1/,
    );
  });
});

type Operation =
  | { kind: 'add'; key: string }
  | { kind: 'addAfter'; key: string; delayMs: number }
  | { kind: 'finish'; key: string; outcome: 'succeed' | 'fail' }
  | { kind: 'advance'; ms: number };

const keyArbitrary = fc.constantFrom('ns/a', 'ns/b', 'ns/c', 'ns/d');
const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), key: keyArbitrary }),
  fc.record({
    kind: fc.constant('addAfter' as const),
    key: keyArbitrary,
    delayMs: fc.integer({ min: 0, max: 60 }),
  }),
  fc.record({
    kind: fc.constant('finish' as const),
    key: keyArbitrary,
    outcome: fc.constantFrom('succeed' as const, 'fail' as const),
  }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 50 }) }),
);

describe('WorkQueue properties', { timeout: 10_000 }, () => {
  test('random add/addAfter/fail/succeed sequences keep the queue invariants', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(operationArbitrary, { maxLength: 40 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(keyArbitrary, { maxLength: 4 }),
        async (operations, concurrency, addedAtShutdown) => {
          const clock = new ManualClock();
          // Each event gets a number so "reconciled after its last add" is a simple comparison.
          let step = 0;
          const lastAdded = new Map<string, number>();
          const lastStarted = new Map<string, number>();
          const running = new Map<string, (outcome: 'succeed' | 'fail') => void>();
          const expectedFailures = new Map<string, number>();
          let overlaps = 0;
          let closed = false;
          let startsAfterClose = 0;

          const queue = new WorkQueue(
            (key) => {
              if (closed) startsAfterClose++;
              lastStarted.set(key, ++step);
              if (running.has(key)) {
                overlaps++;
                return Promise.resolve();
              }
              return new Promise<void>((resolve) => {
                running.set(key, (outcome) => {
                  running.delete(key);
                  // The controller's policy: back off on failure, reset on success.
                  if (outcome === 'fail') {
                    const failures = expectedFailures.get(key) ?? 0;
                    assert.equal(queue.addRateLimited(key), backoffDelayMs(failures, 5, 1_000_000));
                    // A queue that is shutting down schedules no retries, so it counts none.
                    if (!queue.shuttingDown) expectedFailures.set(key, failures + 1);
                  } else {
                    queue.forget(key);
                    expectedFailures.set(key, 0);
                  }
                  assert.equal(queue.numRequeues(key), expectedFailures.get(key) ?? 0);
                  resolve();
                });
              });
            },
            { clock, concurrency },
          );
          queue.start();

          for (const operation of operations) {
            switch (operation.kind) {
              case 'add':
                lastAdded.set(operation.key, ++step);
                queue.add(operation.key);
                break;
              case 'addAfter':
                lastAdded.set(operation.key, ++step);
                queue.addAfter(operation.key, operation.delayMs);
                break;
              case 'finish':
                running.get(operation.key)?.(operation.outcome);
                break;
              case 'advance':
                clock.advance(operation.ms);
                break;
            }
            await settle();
          }

          // Let everything succeed until nothing is running, waiting or scheduled.
          for (let round = 0; ; round++) {
            assert.ok(round < 10_000, 'the queue never became quiet');
            for (const finish of [...running.values()]) finish('succeed');
            await settle();
            if (running.size > 0 || queue.length > 0) continue;
            const nextAt = clock.nextTimerAt();
            if (nextAt === undefined) break;
            clock.advance(nextAt - clock.now());
            await settle();
          }
          assert.equal(overlaps, 0, 'a key was reconciled by two workers at once');
          for (const [key, addedAt] of lastAdded) {
            assert.ok((lastStarted.get(key) ?? 0) > addedAt, `${key} was not reconciled after its last add`);
          }

          // Shut down with work in flight and waiting; it must all finish, and nothing after.
          for (const key of addedAtShutdown) queue.add(key);
          queue.addAfter('ns/a', 5);
          await settle();
          const stopping = queue.shutDown(1_000_000);
          for (let round = 0; running.size > 0 && round < 100; round++) {
            for (const finish of [...running.values()]) finish('fail');
            await settle();
          }
          await settle();
          // Fires the shutdown timeout if the drain is stuck, so a broken queue fails, not hangs.
          clock.advance(1_000_000);
          assert.equal(await stopping, true);
          closed = true;
          for (const key of addedAtShutdown) {
            assert.ok(lastStarted.has(key), `${key}, waiting at shutdown, was not drained`);
          }
          queue.add('ns/a');
          queue.addRateLimited('ns/b');
          clock.advance(2_000_000);
          await settle();
          assert.equal(startsAfterClose, 0, 'a key was reconciled after shutdown completed');
          assert.equal(clock.pendingTimers, 0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
