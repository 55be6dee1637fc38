/**
 * portico-controller-manager: runs Portico's controllers on the elected leader replica: the
 * Endpoints, EndpointSlice, EndpointSlice-mirroring and LoadBalancer controllers, with
 * configuration, leader election, health and metrics endpoints and an orderly shutdown.
 */
import { parseArgs } from 'node:util';
import { poolRoutes } from '../webhooks/routes.ts';
import { createEndpointControllers } from './endpoint-controllers.ts';
import { allEndpointInformers } from './endpoint-informers.ts';
import { DEFAULT_MAX_ENDPOINTS_PER_SLICE, validateMaxEndpointsPerSlice } from './endpointslice/plan.ts';
import {
  DEFAULT_MAX_MIRRORED_ENDPOINTS_PER_SUBSET,
  validateMaxEndpointsPerSubset,
} from './endpointslice-mirroring/plan.ts';
import { LoadBalancerController } from './loadbalancer/controller.ts';
import {
  LOAD_BALANCER_FLAG_HELP,
  LOAD_BALANCER_FLAG_OPTIONS,
  type LoadBalancerConfig,
  parseLoadBalancerFlags,
} from './loadbalancer/flags.ts';
import { goDurationMs } from './runtime/duration.ts';
import { EventRecorder } from './runtime/events.ts';
import { loadKubeConfig } from './runtime/kube.ts';
import { DEFAULT_LEADER_ELECTION_TIMING, validateLeaderElectionTiming } from './runtime/leader-election.ts';
import { createLogger, errorFields, resolveLogLevel } from './runtime/logging.ts';
import { type ListenAddress, Manager, parseListenAddress } from './runtime/manager.ts';
import { enableProcessMetrics } from './runtime/metrics.ts';
import {
  parseServiceAllocationFlags,
  SERVICE_ALLOCATION_FLAG_HELP,
  SERVICE_ALLOCATION_FLAG_OPTIONS,
  type ServiceAllocationConfig,
} from './service-allocations/flags.ts';
import { setUpServiceAllocation } from './service-allocations/setup.ts';

/** Exit status for bad flags, as Go flag parsing uses. */
export const USAGE_EXIT_CODE = 2;

/** Everything the entrypoint needs, decoded and validated from flags and environment. */
export interface ControllerManagerConfig {
  kubeconfigPath: string | undefined;
  namespace: string;
  leaderElect: boolean;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  leaderElectionId: string;
  healthAddress: ListenAddress;
  metricsAddress: ListenAddress;
  logLevel: string | undefined;
  /** `--max-endpoints-per-slice`, 1..1000. */
  maxEndpointsPerSlice: number;
  /** `--endpoint-updates-batch-period`, in ms. */
  endpointUpdatesBatchPeriodMs: number;
  /** `--concurrent-service-endpoint-syncs`, 1..50. */
  concurrentServiceEndpointSyncs: number;
  /** `--mirroring-max-endpoints-per-subset`, 1..1000. */
  mirroringMaxEndpointsPerSubset: number;
}

/** A flag problem; the process prints the message and exits with {@link USAGE_EXIT_CODE}. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const FLAG_HELP: [string, string][] = [
  ['--kubeconfig <path>', 'kubeconfig file; default: $KUBECONFIG, else the in-cluster service account'],
  [
    '--namespace <name>',
    'namespace for our own objects (the leader election Lease); default: $POD_NAMESPACE or portico-system',
  ],
  ['--leader-elect[=true|false]', 'run controllers only on the replica holding the Lease (default true)'],
  [
    '--leader-elect-lease-duration <duration>',
    'how long a standby waits before taking an unrenewed Lease (default 15s)',
  ],
  [
    '--leader-elect-renew-deadline <duration>',
    'how long the leader retries renewing before it gives up (default 10s)',
  ],
  [
    '--leader-elect-retry-period <duration>',
    'pause between attempts to acquire or renew the Lease (default 2s)',
  ],
  ['--leader-election-id <name>', 'name of the Lease (default portico-controller-manager)'],
  ['--health-addr <host:port>', 'where /healthz and /readyz are served (default :8081)'],
  ['--metrics-addr <host:port>', 'where /metrics is served; may equal --health-addr (default :8080)'],
  [
    '--log-level <level>',
    'error, warn, info, http, verbose, debug, silly or silent (default info, or $PORTICO_LOG_LEVEL)',
  ],
  [
    '--max-endpoints-per-slice <n>',
    'endpoints per EndpointSlice before another is started, 1..1000 (default 100)',
  ],
  [
    '--endpoint-updates-batch-period <duration>',
    'wait this long after a pod change before syncing its Services, so bursts sync once (default 0s)',
  ],
  [
    '--concurrent-service-endpoint-syncs <n>',
    'Services whose Endpoints and EndpointSlices are synced at once, 1..50 (default 5)',
  ],
  [
    '--mirroring-max-endpoints-per-subset <n>',
    'addresses mirrored from one Endpoints subset into EndpointSlices, 1..1000 (default 1000)',
  ],
  ...LOAD_BALANCER_FLAG_HELP,
  ...SERVICE_ALLOCATION_FLAG_HELP,
  ['-h, --help', 'print this help and exit'],
];

/** The `--help` text. */
export function usage(): string {
  const width = Math.max(...FLAG_HELP.map(([flag]) => flag.length));
  const lines = FLAG_HELP.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`);
  return [
    'Usage: portico-controller-manager [flags]',
    '',
    "Runs Portico's controllers on the replica elected leader through a coordination.k8s.io Lease.",
    'Durations are Go-style: 500ms, 15s, 1m30s.',
    '',
    'Flags:',
    ...lines,
    '',
  ].join('\n');
}

/**
 * Parses a Go-style duration (`1m30s`, `500ms`, `2.5s`) into milliseconds; errors name the flag
 * and the value as Kubernetes components do.
 */
export function parseDuration(value: string, flag: string): number {
  const ms = goDurationMs(value);
  if (ms === undefined) {
    throw new UsageError(
      `${flag}: Invalid value: ${JSON.stringify(value)}: must be a duration such as "500ms", "15s" or "1m30s"`,
    );
  }
  return ms;
}

/**
 * Parses an integer flag and checks its range; errors use kube-controller-manager's wording
 * (`must not be less than 1`).
 */
function parseIntegerFlag(
  value: string | undefined,
  flag: string,
  fallback: number,
  validate: (n: number) => void,
): number {
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(value)) {
    throw new UsageError(`${flag}: Invalid value: ${JSON.stringify(value)}: must be an integer`);
  }
  const parsed = Number(value);
  try {
    validate(parsed);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  return parsed;
}

function validateConcurrentSyncs(value: number): void {
  const flag = '--concurrent-service-endpoint-syncs';
  if (value < 1) throw new RangeError(`${flag}: Invalid value: ${value}: must not be less than 1`);
  if (value > 50) throw new RangeError(`${flag}: Invalid value: ${value}: must not be more than 50`);
}

/**
 * Turns `--leader-elect=false` (the Kubernetes spelling) into `--no-leader-elect`, which is what
 * node:util parseArgs understands for booleans.
 */
function normaliseBooleanFlags(argv: readonly string[]): string[] {
  return argv.map((arg) => {
    const match = /^--leader-elect=(.*)$/.exec(arg);
    if (!match) {
      return arg;
    }
    if (match[1] === 'true') {
      return '--leader-elect';
    }
    if (match[1] === 'false') {
      return '--no-leader-elect';
    }
    throw new UsageError(`--leader-elect: Invalid value: ${JSON.stringify(match[1])}: must be true or false`);
  });
}

/**
 * Decodes and validates flags and environment. Returns `'help'` for `--help`; throws
 * {@link UsageError} for anything malformed.
 */
export function parseControllerManagerFlags(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ControllerManagerConfig | 'help' {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(normaliseBooleanFlags(argv));
  } catch (error) {
    if (error instanceof UsageError) {
      throw error;
    }
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    return 'help';
  }
  if (positionals.length > 0) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(positionals[0])}: this command takes only flags`,
    );
  }
  const timing = {
    leaseDurationMs: values['leader-elect-lease-duration']
      ? parseDuration(values['leader-elect-lease-duration'], '--leader-elect-lease-duration')
      : DEFAULT_LEADER_ELECTION_TIMING.leaseDurationMs,
    renewDeadlineMs: values['leader-elect-renew-deadline']
      ? parseDuration(values['leader-elect-renew-deadline'], '--leader-elect-renew-deadline')
      : DEFAULT_LEADER_ELECTION_TIMING.renewDeadlineMs,
    retryPeriodMs: values['leader-elect-retry-period']
      ? parseDuration(values['leader-elect-retry-period'], '--leader-elect-retry-period')
      : DEFAULT_LEADER_ELECTION_TIMING.retryPeriodMs,
  };
  const timingErrors = validateLeaderElectionTiming(timing);
  if (timingErrors.length > 0) {
    throw new UsageError(timingErrors.join('\n'));
  }
  const namespace = values.namespace || env['POD_NAMESPACE'] || 'portico-system';
  const leaderElectionId = values['leader-election-id'] ?? 'portico-controller-manager';
  for (const [flag, value] of [
    ['--namespace', namespace],
    ['--leader-election-id', leaderElectionId],
  ] as const) {
    if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(value)) {
      throw new UsageError(
        `${flag}: Invalid value: ${JSON.stringify(value)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
      );
    }
  }
  try {
    resolveLogLevel(values['log-level'], env);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const address = (flag: 'health-addr' | 'metrics-addr', fallback: string) => {
    try {
      return parseListenAddress(values[flag] ?? fallback, `--${flag}`);
    } catch (error) {
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
  };
  return {
    kubeconfigPath: values.kubeconfig,
    namespace,
    leaderElect: values['leader-elect'] ?? true,
    ...timing,
    leaderElectionId,
    healthAddress: address('health-addr', ':8081'),
    metricsAddress: address('metrics-addr', ':8080'),
    logLevel: values['log-level'],
    maxEndpointsPerSlice: parseIntegerFlag(
      values['max-endpoints-per-slice'],
      '--max-endpoints-per-slice',
      DEFAULT_MAX_ENDPOINTS_PER_SLICE,
      validateMaxEndpointsPerSlice,
    ),
    endpointUpdatesBatchPeriodMs: values['endpoint-updates-batch-period']
      ? parseDuration(values['endpoint-updates-batch-period'], '--endpoint-updates-batch-period')
      : 0,
    concurrentServiceEndpointSyncs: parseIntegerFlag(
      values['concurrent-service-endpoint-syncs'],
      '--concurrent-service-endpoint-syncs',
      5,
      validateConcurrentSyncs,
    ),
    mirroringMaxEndpointsPerSubset: parseIntegerFlag(
      values['mirroring-max-endpoints-per-subset'],
      '--mirroring-max-endpoints-per-subset',
      DEFAULT_MAX_MIRRORED_ENDPOINTS_PER_SUBSET,
      validateMaxEndpointsPerSubset,
    ),
  };
}

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    allowNegative: true,
    options: {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      'leader-elect': { type: 'boolean' },
      'leader-elect-lease-duration': { type: 'string' },
      'leader-elect-renew-deadline': { type: 'string' },
      'leader-elect-retry-period': { type: 'string' },
      'leader-election-id': { type: 'string' },
      'health-addr': { type: 'string' },
      'metrics-addr': { type: 'string' },
      'log-level': { type: 'string' },
      'max-endpoints-per-slice': { type: 'string' },
      'endpoint-updates-batch-period': { type: 'string' },
      'concurrent-service-endpoint-syncs': { type: 'string' },
      'mirroring-max-endpoints-per-subset': { type: 'string' },
      ...LOAD_BALANCER_FLAG_OPTIONS,
      ...SERVICE_ALLOCATION_FLAG_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/**
 * Runs the controller manager until SIGTERM/SIGINT or lost leadership; returns the exit status
 * (0 after a clean stop, 1 after losing leadership or failing to start, 2 for bad flags).
 */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let config: ControllerManagerConfig | 'help';
  let allocationConfig: ServiceAllocationConfig;
  let loadBalancerConfig: LoadBalancerConfig;
  try {
    config = parseControllerManagerFlags(argv, env);
    allocationConfig = parseServiceAllocationFlags(argv);
    loadBalancerConfig = parseLoadBalancerFlags(argv);
  } catch (error) {
    process.stderr.write(
      `portico-controller-manager: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.stderr.write('Run portico-controller-manager --help for the list of flags.\n');
    return USAGE_EXIT_CODE;
  }
  if (config === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  const logger = createLogger({
    level: config.logLevel,
    fields: { component: 'portico-controller-manager' },
  });
  let manager: Manager;
  try {
    const { kubeConfig, source } = loadKubeConfig({ kubeconfigPath: config.kubeconfigPath, env });
    logger.info('loaded kubeconfig', { source, server: kubeConfig.getCurrentCluster()?.server });
    enableProcessMetrics();
    const shutdownTimeoutMs = 10_000;
    manager = new Manager({
      kubeConfig,
      logger,
      healthAddress: config.healthAddress,
      metricsAddress: config.metricsAddress,
      shutdownTimeoutMs,
      ...(config.leaderElect
        ? {
            leaderElection: {
              namespace: config.namespace,
              leaseName: config.leaderElectionId,
              timing: {
                leaseDurationMs: config.leaseDurationMs,
                renewDeadlineMs: config.renewDeadlineMs,
                retryPeriodMs: config.retryPeriodMs,
              },
            },
          }
        : {}),
    });
    const endpointControllers = createEndpointControllers(kubeConfig, logger, {
      maxEndpointsPerSlice: config.maxEndpointsPerSlice,
      endpointUpdatesBatchPeriodMs: config.endpointUpdatesBatchPeriodMs,
      concurrentServiceEndpointSyncs: config.concurrentServiceEndpointSyncs,
      mirroringMaxEndpointsPerSubset: config.mirroringMaxEndpointsPerSubset,
    });
    for (const informer of allEndpointInformers(endpointControllers.informers)) manager.addInformer(informer);
    for (const controller of endpointControllers.controllers) manager.addController(controller);
    const loadBalancer = new LoadBalancerController({
      kubeConfig,
      logger,
      loadBalancerClass: loadBalancerConfig.loadBalancerClass,
      services: endpointControllers.informers.services,
      events: new EventRecorder({ kubeConfig, component: 'loadbalancer-controller', logger }),
    });
    for (const informer of loadBalancer.informers) manager.addInformer(informer);
    manager.addController(loadBalancer);
    const allocation = await setUpServiceAllocation({
      kubeConfig,
      manager,
      namespace: config.namespace,
      config: allocationConfig,
      logger,
    });
    // The pool webhook checks overlaps against the LoadBalancer controller's pools cache, which
    // the manager syncs on every replica, so no second watch of pools is opened.
    allocation.webhookServer?.addRoutes(poolRoutes(loadBalancer.pools));
    // Admission is answered by every replica, not only the leader, so it lives beside the manager.
    void manager.done.then(() => allocation.webhookServer?.stop());
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info('received signal; shutting down', { signal });
      // If an orderly stop hangs, leave anyway: the orchestrator would SIGKILL us soon after.
      setTimeout(() => process.exit(1), shutdownTimeoutMs + 2_000).unref();
      void manager.stop();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    await manager.start();
    await allocation.webhookServer?.start();
    logger.info('controller manager started', {
      identity: manager.identity,
      leaderElect: config.leaderElect,
    });
  } catch (error) {
    logger.error('controller manager failed to start', errorFields(error));
    return 1;
  }
  const reason = await manager.done;
  return reason === 'stopped' ? 0 : 1;
}

if (import.meta.main) {
  // Exit explicitly: keep-alive sockets of the API client would otherwise hold the process open.
  process.exit(await main(process.argv.slice(2)));
}
