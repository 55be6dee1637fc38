import {
  Counter,
  type CounterConfiguration,
  collectDefaultMetrics,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  type Metric,
  Registry,
} from 'prom-client';

/**
 * The one Prometheus registry of the process. Every module registers its metrics here so that a
 * single `/metrics` endpoint serves all of them; the prom-client global registry is deliberately
 * not used, so tests and libraries that touch it cannot leak series into ours.
 */
export const metricsRegistry: Registry = new Registry();

/** Prefix shared by every metric Portico defines, so dashboards can select ours in one match. */
export const METRIC_PREFIX = 'portico_';

/**
 * Thrown when a metric name is registered twice with different types, which would otherwise
 * silently hand one caller an object of the wrong kind.
 */
export class MetricTypeConflictError extends Error {
  /** The metric name that is already taken. */
  readonly metricName: string;

  /**
   * @param metricName the name already registered
   * @param wanted the kind of metric the caller asked for
   */
  constructor(metricName: string, wanted: string) {
    super(`metric ${metricName} is already registered with a type other than ${wanted}`);
    this.name = 'MetricTypeConflictError';
    this.metricName = metricName;
  }
}

function existingMetric<M>(name: string, kind: abstract new (...args: never[]) => M, kindName: string) {
  const found: Metric | undefined = metricsRegistry.getSingleMetric(name);
  if (found === undefined) return undefined;
  if (!(found instanceof kind)) throw new MetricTypeConflictError(name, kindName);
  return found;
}

/**
 * Returns the gauge called `config.name` on {@link metricsRegistry}, creating it on first use.
 * Registering twice is normal (a module imported by several tests, a controller restarted in
 * the same process), so the second caller gets the first caller's gauge instead of an error.
 * `config.registers` is ignored: the gauge always lives on {@link metricsRegistry}.
 */
export function getOrCreateGauge<L extends string>(config: GaugeConfiguration<L>): Gauge<L> {
  const found = existingMetric(config.name, Gauge, 'gauge');
  if (found !== undefined) return found as Gauge<L>;
  return new Gauge<L>({ ...config, registers: [metricsRegistry] });
}

/**
 * Returns the counter called `config.name` on {@link metricsRegistry}, creating it on first use.
 * See {@link getOrCreateGauge} for why a repeated registration is not an error.
 */
export function getOrCreateCounter<L extends string>(config: CounterConfiguration<L>): Counter<L> {
  const found = existingMetric(config.name, Counter, 'counter');
  if (found !== undefined) return found as Counter<L>;
  return new Counter<L>({ ...config, registers: [metricsRegistry] });
}

/**
 * Returns the histogram called `config.name` on {@link metricsRegistry}, creating it on first use.
 * See {@link getOrCreateGauge} for why a repeated registration is not an error.
 */
export function getOrCreateHistogram<L extends string>(config: HistogramConfiguration<L>): Histogram<L> {
  const found = existingMetric(config.name, Histogram, 'histogram');
  if (found !== undefined) return found as Histogram<L>;
  return new Histogram<L>({ ...config, registers: [metricsRegistry] });
}

let processMetricsEnabled = false;

/**
 * Adds the standard Node.js process metrics (CPU, memory, event loop lag, GC) to
 * {@link metricsRegistry} under {@link METRIC_PREFIX}. Safe to call more than once.
 */
export function enableProcessMetrics(): void {
  if (processMetricsEnabled) return;
  processMetricsEnabled = true;
  collectDefaultMetrics({ register: metricsRegistry, prefix: METRIC_PREFIX });
}

/** A rendered scrape: what an HTTP `/metrics` handler writes. */
export interface MetricsExposition {
  /** The value for the `Content-Type` response header. */
  contentType: string;
  /** The Prometheus text exposition of every metric on {@link metricsRegistry}. */
  body: string;
}

/** Renders {@link metricsRegistry} in the Prometheus text format, for an HTTP `/metrics` handler. */
export async function renderMetrics(): Promise<MetricsExposition> {
  return { contentType: metricsRegistry.contentType, body: await metricsRegistry.metrics() };
}

/** The label every per-controller series carries. */
type ControllerLabel = 'controller';

/** Series shared by all controllers, told apart by the `controller` label. */
const workQueueDepth = (): Gauge<ControllerLabel> =>
  getOrCreateGauge({
    name: `${METRIC_PREFIX}workqueue_depth`,
    help: 'Keys waiting in the work queue (not counting keys being reconciled or waiting on a timer).',
    labelNames: ['controller'],
  });

const workQueueAdds = (): Counter<ControllerLabel> =>
  getOrCreateCounter({
    name: `${METRIC_PREFIX}workqueue_adds_total`,
    help: 'Keys put into the work queue; an add of a key that is already waiting is not counted.',
    labelNames: ['controller'],
  });

const workQueueRetries = (): Counter<ControllerLabel> =>
  getOrCreateCounter({
    name: `${METRIC_PREFIX}workqueue_retries_total`,
    help: 'Keys scheduled again with per-key backoff after a failed reconcile.',
    labelNames: ['controller'],
  });

const reconcileDuration = (): Histogram<ControllerLabel> =>
  getOrCreateHistogram({
    name: `${METRIC_PREFIX}reconcile_duration_seconds`,
    help: 'Time spent in one reconcile of one key, successful or not.',
    labelNames: ['controller'],
    // Reconciles read caches and usually write nothing, so most finish in milliseconds; the
    // long tail is API writes under conflict or a slow API server.
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  });

const reconcileErrors = (): Counter<ControllerLabel> =>
  getOrCreateCounter({
    name: `${METRIC_PREFIX}reconcile_errors_total`,
    help: 'Reconciles that threw, whether retried with backoff or dropped as terminal.',
    labelNames: ['controller'],
  });

/**
 * The metrics of one controller and its work queue, already bound to its `controller` label.
 * Obtained from {@link controllerMetrics}; the work queue and the controller runner call these.
 */
export interface ControllerMetrics {
  /** Sets the number of keys waiting to be reconciled. */
  setQueueDepth(depth: number): void;
  /** Counts one key newly put into the queue. */
  countAdd(): void;
  /** Counts one key scheduled again after a failure. */
  countRetry(): void;
  /** Records how long one reconcile took. */
  observeReconcileSeconds(seconds: number): void;
  /** Counts one reconcile that threw. */
  countReconcileError(): void;
}

/**
 * Returns the metrics of the controller called `controllerName`. The series exist from this call
 * on (at zero), so a scrape shows a controller that has done nothing yet instead of omitting it.
 */
export function controllerMetrics(controllerName: string): ControllerMetrics {
  const labels = { controller: controllerName };
  const depth = workQueueDepth().labels(labels);
  const adds = workQueueAdds().labels(labels);
  const retries = workQueueRetries().labels(labels);
  const duration = reconcileDuration().labels(labels);
  const errors = reconcileErrors().labels(labels);
  depth.set(0);
  adds.inc(0);
  retries.inc(0);
  errors.inc(0);
  return {
    setQueueDepth: (value) => depth.set(value),
    countAdd: () => adds.inc(),
    countRetry: () => retries.inc(),
    observeReconcileSeconds: (seconds) => duration.observe(seconds),
    countReconcileError: () => errors.inc(),
  };
}
