import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  controllerMetrics,
  enableProcessMetrics,
  getOrCreateCounter,
  getOrCreateGauge,
  getOrCreateHistogram,
  MetricTypeConflictError,
  metricsRegistry,
  renderMetrics,
} from './metrics.ts';

describe('metrics registry helpers', () => {
  test('registering a name twice returns the first metric', () => {
    const config = { name: 'portico_test_leader', help: 'test gauge', labelNames: ['lease'] as const };
    const first = getOrCreateGauge(config);
    const second = getOrCreateGauge(config);
    assert.equal(first, second);
    assert.equal(metricsRegistry.getSingleMetric('portico_test_leader'), first);
  });

  test('registering a name with another type fails', () => {
    getOrCreateCounter({ name: 'portico_test_things_total', help: 'test counter' });
    assert.throws(
      () => getOrCreateHistogram({ name: 'portico_test_things_total', help: 'test histogram' }),
      (error: unknown) =>
        error instanceof MetricTypeConflictError && error.metricName === 'portico_test_things_total',
    );
  });

  test('a gauge registered by another module is served with the controller metrics', async () => {
    getOrCreateGauge({ name: 'portico_test_is_leader', help: 'test leader status' }).set(1);
    const { contentType, body } = await renderMetrics();
    assert.match(contentType, /^text\/plain/);
    assert.match(body, /^portico_test_is_leader 1$/m);
  });
});

describe('controllerMetrics', () => {
  test('series exist at zero for a controller that has done nothing', async () => {
    controllerMetrics('idle-controller');
    const { body } = await renderMetrics();
    for (const series of [
      'portico_workqueue_depth',
      'portico_workqueue_adds_total',
      'portico_workqueue_retries_total',
      'portico_reconcile_errors_total',
    ]) {
      assert.match(body, new RegExp(`^${series}\\{controller="idle-controller"\\} 0$`, 'm'));
    }
  });

  test('counts, depth and durations land on the controller label only', async () => {
    const busy = controllerMetrics('busy-controller');
    controllerMetrics('quiet-controller');
    busy.countAdd();
    busy.countAdd();
    busy.countRetry();
    busy.countReconcileError();
    busy.setQueueDepth(7);
    busy.observeReconcileSeconds(0.003);
    busy.observeReconcileSeconds(2);
    const { body } = await renderMetrics();
    assert.match(body, /^portico_workqueue_adds_total\{controller="busy-controller"\} 2$/m);
    assert.match(body, /^portico_workqueue_retries_total\{controller="busy-controller"\} 1$/m);
    assert.match(body, /^portico_reconcile_errors_total\{controller="busy-controller"\} 1$/m);
    assert.match(body, /^portico_workqueue_depth\{controller="busy-controller"\} 7$/m);
    assert.match(body, /^portico_reconcile_duration_seconds_count\{controller="busy-controller"\} 2$/m);
    assert.match(
      body,
      /^portico_reconcile_duration_seconds_bucket\{le="0.005",controller="busy-controller"\} 1$/m,
    );
    assert.match(body, /^portico_workqueue_adds_total\{controller="quiet-controller"\} 0$/m);
  });
});

describe('enableProcessMetrics', () => {
  test('adds the Node.js process metrics once, under the portico_ prefix', async () => {
    enableProcessMetrics();
    enableProcessMetrics();
    const { body } = await renderMetrics();
    assert.match(body, /^# TYPE portico_process_cpu_user_seconds_total counter$/m);
  });
});
