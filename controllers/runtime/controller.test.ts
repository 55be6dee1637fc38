import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Histogram } from 'prom-client';
import { Controller, type ReconcileResult, type Reconciler, TerminalError } from './controller.ts';
import { createLogger } from './logging.ts';
import { metricsRegistry } from './metrics.ts';
import { recordingDestination } from './testing/log-records.ts';
import { ManualClock } from './workqueue.ts';

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A logger whose JSON records are kept in memory instead of printed. */
function capturedLogger() {
  const { destination, records } = recordingDestination();
  return { logger: createLogger({ level: 'debug', destination }), records };
}

/** A reconciler that plays back scripted outcomes and records when each call happened. */
function scriptedReconciler(clock: ManualClock, outcomes: Array<ReconcileResult | Error | undefined>) {
  const calls: Array<[string, number]> = [];
  const reconciler: Reconciler = {
    async reconcile(key) {
      calls.push([key, clock.now()]);
      const outcome = outcomes.shift();
      if (outcome instanceof Error) throw outcome;
      return outcome;
    },
  };
  return { reconciler, calls };
}

/** The value of a per-controller series, 0 when the series does not exist. */
async function seriesValue(metricName: string, controller: string): Promise<number> {
  const metric = metricsRegistry.getSingleMetric(metricName);
  assert.ok(metric, `${metricName} is registered`);
  const { values } = await metric.get();
  const found = values.find((value) => value.labels['controller'] === controller);
  return found?.value ?? 0;
}

let controllerCount = 0;
/** Metrics are process-wide, so each test uses its own controller name. */
const uniqueName = (base: string): string => `${base}-${++controllerCount}`;

describe('Controller', { timeout: 10_000 }, () => {
  test('keys enqueued before run() wait, and repeated enqueues collapse into one reconcile', async () => {
    const clock = new ManualClock();
    const { reconciler, calls } = scriptedReconciler(clock, []);
    const { logger } = capturedLogger();
    const controller = new Controller({ name: uniqueName('endpoints'), reconciler, logger, clock });
    controller.enqueue('default/web');
    controller.enqueue('default/web');
    await settle();
    assert.equal(calls.length, 0);
    assert.equal(controller.queueLength, 1);
    controller.run();
    await controller.whenIdle();
    assert.deepEqual(calls, [['default/web', 0]]);
    assert.equal(await controller.stop(), true);
  });

  test('a thrown error retries with growing backoff, and success resets it', async () => {
    const clock = new ManualClock();
    const failure = new Error('Operation cannot be fulfilled: the object has been modified');
    const { reconciler, calls } = scriptedReconciler(clock, [
      failure,
      failure,
      undefined,
      failure,
      undefined,
    ]);
    const { logger, records } = capturedLogger();
    const name = uniqueName('endpointslice');
    const controller = new Controller({ name, reconciler, logger, clock });
    controller.run();
    controller.enqueue('default/web');
    await settle();
    clock.advance(5);
    await settle();
    clock.advance(10);
    await settle();
    assert.deepEqual(
      calls.map(([, at]) => at),
      [0, 5, 15],
    );
    controller.enqueue('default/web');
    await settle();
    clock.advance(4);
    await settle();
    assert.equal(calls.length, 4, 'not retried before the reset backoff of 5 ms');
    clock.advance(1);
    await settle();
    assert.deepEqual(
      calls.map(([, at]) => at),
      [0, 5, 15, 15, 20],
    );
    const failures = records.filter(
      (record) => record['message'] === 'reconcile failed; retrying with backoff',
    );
    assert.deepEqual(
      failures.map((record) => [record['controller'], record['key'], record['retryInMs'], record['error']]),
      [
        [name, 'default/web', 5, failure.message],
        [name, 'default/web', 10, failure.message],
        [name, 'default/web', 5, failure.message],
      ],
    );
    assert.equal(await seriesValue('portico_reconcile_errors_total', name), 3);
    assert.equal(await seriesValue('portico_workqueue_retries_total', name), 3);
    await controller.stop();
  });

  test('a TerminalError is logged and dropped, not retried', async () => {
    const clock = new ManualClock();
    const { reconciler, calls } = scriptedReconciler(clock, [
      new TerminalError('spec.selector: Invalid value: "app=": a valid label value is required'),
    ]);
    const { logger, records } = capturedLogger();
    const name = uniqueName('mirroring');
    const controller = new Controller({ name, reconciler, logger, clock });
    controller.run();
    controller.enqueue('default/external');
    await settle();
    clock.advance(1_000_000);
    await settle();
    assert.equal(calls.length, 1);
    assert.equal(clock.pendingTimers, 0);
    const dropped = records.find(
      (record) => record['message'] === 'reconcile failed and will not be retried',
    );
    assert.ok(dropped, 'the terminal failure is logged');
    assert.equal(dropped['level'], 'error');
    assert.equal(dropped['key'], 'default/external');
    assert.match(String(dropped['error']), /spec\.selector: Invalid value/);
    assert.equal(await seriesValue('portico_reconcile_errors_total', name), 1);
    assert.equal(await seriesValue('portico_workqueue_retries_total', name), 0);
    await controller.stop();
  });

  test('requeueAfter reconciles the key again after that delay', async () => {
    const clock = new ManualClock();
    const { reconciler, calls } = scriptedReconciler(clock, [{ requeueAfter: 30_000 }, { requeueAfter: 0 }]);
    const { logger } = capturedLogger();
    const controller = new Controller({ name: uniqueName('loadbalancer'), reconciler, logger, clock });
    controller.run();
    controller.enqueue('default/lb');
    await settle();
    clock.advance(29_999);
    await settle();
    assert.equal(calls.length, 1);
    clock.advance(1);
    await settle();
    assert.deepEqual(calls, [
      ['default/lb', 0],
      ['default/lb', 30_000],
    ]);
    clock.advance(1_000_000);
    await settle();
    assert.equal(calls.length, 2, 'requeueAfter: 0 asks for nothing');
    await controller.stop();
  });

  test('records adds, depth and reconcile durations under its name', async () => {
    const clock = new ManualClock();
    const { reconciler } = scriptedReconciler(clock, []);
    const { logger } = capturedLogger();
    const name = uniqueName('repair');
    const controller = new Controller({ name, reconciler, logger, clock });
    for (const key of ['a/1', 'a/2', 'a/2', 'a/3']) controller.enqueue(key);
    assert.equal(await seriesValue('portico_workqueue_depth', name), 3);
    controller.run();
    await controller.whenIdle();
    assert.equal(await seriesValue('portico_workqueue_depth', name), 0);
    assert.equal(await seriesValue('portico_workqueue_adds_total', name), 3);
    const histogram = metricsRegistry.getSingleMetric('portico_reconcile_duration_seconds');
    assert.ok(histogram instanceof Histogram);
    const { values } = await histogram.get();
    const count = values.find(
      (value) =>
        value.labels['controller'] === name &&
        value.metricName === 'portico_reconcile_duration_seconds_count',
    );
    assert.equal(count?.value, 3);
    await controller.stop();
  });

  test('stop() lets the reconcile in flight finish and then refuses new keys', async () => {
    let release = (): void => {};
    const started: string[] = [];
    const reconciler: Reconciler = {
      async reconcile(key) {
        started.push(key);
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return undefined;
      },
    };
    const { logger, records } = capturedLogger();
    const controller = new Controller({ name: uniqueName('endpoints'), reconciler, logger });
    controller.run();
    controller.enqueue('default/web');
    await settle();
    const stopping = controller.stop(5_000);
    controller.enqueue('default/late');
    release();
    assert.equal(await stopping, true);
    assert.deepEqual(started, ['default/web']);
    assert.ok(records.some((record) => record['message'] === 'workers stopped'));
  });
  test('a reconcile that fails during stop() is logged and not retried', async () => {
    const clock = new ManualClock();
    let fail = (_error: Error): void => {};
    let calls = 0;
    const reconciler: Reconciler = {
      reconcile() {
        calls++;
        return new Promise((_resolve, reject) => {
          fail = reject;
        });
      },
    };
    const { logger, records } = capturedLogger();
    const controller = new Controller({ name: uniqueName('endpoints'), reconciler, logger, clock });
    controller.run();
    controller.enqueue('default/web');
    await settle();
    const stopping = controller.stop(5_000);
    fail(new Error('connection reset'));
    assert.equal(await stopping, true);
    clock.advance(1_000_000);
    await settle();
    assert.equal(calls, 1);
    assert.ok(
      records.some((record) => record['message'] === 'reconcile failed during shutdown; not retried'),
    );
  });
});
