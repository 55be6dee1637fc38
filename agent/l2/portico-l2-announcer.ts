/**
 * `portico-l2-announcer`: L2 announcement of LoadBalancer IPs as a process of its own, for nodes
 * that run another proxy and for the dataplane tests (one process per simulated node, killed with
 * SIGKILL to measure failover). Logs JSON to stderr; prints `READY` on stdout once synced.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_LOAD_BALANCER_CLASS } from '../../api/labels.ts';
import { loadKubeConfig } from '../../controllers/runtime/kube.ts';
import { createLogger } from '../../controllers/runtime/logging.ts';
import { parseDuration } from '../flags.ts';
import { DEFAULT_L2_TIMING, type L2Timing, validateL2Timing } from './announcer.ts';
import { startL2Announcement } from './l2-announcement.ts';

/** The `--help` text. */
export const L2_ANNOUNCER_USAGE = `Usage: portico-l2-announcer --node-name NAME [flags]

Answers ARP/NDP for the LoadBalancer IPs whose per-IP Lease this node holds.

Flags:
  --node-name NAME              this node's name (required)
  --kubeconfig PATH             kubeconfig file (default: KUBECONFIG, then in-cluster)
  --lease-namespace NAME        namespace of the per-IP Leases (default portico-system)
  --l2-interface NAME           LAN interface (default: the one holding the node's InternalIP)
  --netns NAME                  change addresses in this network namespace (tests)
  --load-balancer-class CLASS   class handled besides none (default ${DEFAULT_LOAD_BALANCER_CLASS})
  --l2-lease-duration DURATION  default ${DEFAULT_L2_TIMING.leaseDurationMs / 1000}s
  --l2-renew-deadline DURATION  default ${DEFAULT_L2_TIMING.renewDeadlineMs / 1000}s
  --l2-retry-period DURATION    default ${DEFAULT_L2_TIMING.retryPeriodMs}ms
  --log-level LEVEL             default info
`;

/** The parsed command line. */
export interface L2AnnouncerConfig {
  nodeName: string;
  kubeconfig: string | undefined;
  leaseNamespace: string;
  interface: string | undefined;
  netns: string | undefined;
  loadBalancerClass: string;
  timing: L2Timing;
  logLevel: string | undefined;
}

/** Parses the flags; throws with Kubernetes-style messages, returns null for `--help`. */
export function parseL2AnnouncerFlags(argv: readonly string[]): L2AnnouncerConfig | null {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      'node-name': { type: 'string' },
      kubeconfig: { type: 'string' },
      'lease-namespace': { type: 'string', default: 'portico-system' },
      'l2-interface': { type: 'string' },
      netns: { type: 'string' },
      'load-balancer-class': { type: 'string', default: DEFAULT_LOAD_BALANCER_CLASS },
      'l2-lease-duration': { type: 'string' },
      'l2-renew-deadline': { type: 'string' },
      'l2-retry-period': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help === true) return null;
  if (values['node-name'] === undefined || values['node-name'] === '') {
    throw new Error('--node-name: Required value: the name of this node');
  }
  const duration = (flag: string, value: string | undefined, fallback: number) =>
    value === undefined ? fallback : parseDuration(value, flag);
  const timing: L2Timing = {
    ...DEFAULT_L2_TIMING,
    leaseDurationMs: duration(
      '--l2-lease-duration',
      values['l2-lease-duration'],
      DEFAULT_L2_TIMING.leaseDurationMs,
    ),
    renewDeadlineMs: duration(
      '--l2-renew-deadline',
      values['l2-renew-deadline'],
      DEFAULT_L2_TIMING.renewDeadlineMs,
    ),
    retryPeriodMs: duration('--l2-retry-period', values['l2-retry-period'], DEFAULT_L2_TIMING.retryPeriodMs),
  };
  const errors = validateL2Timing(timing);
  if (errors.length > 0) throw new Error(errors.join('\n'));
  return {
    nodeName: values['node-name'],
    kubeconfig: values.kubeconfig,
    leaseNamespace: values['lease-namespace'],
    interface: values['l2-interface'],
    netns: values.netns,
    loadBalancerClass: values['load-balancer-class'],
    timing,
    logLevel: values['log-level'],
  };
}

async function main(): Promise<void> {
  let config: L2AnnouncerConfig | null;
  try {
    config = parseL2AnnouncerFlags(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(
      `${error instanceof Error ? error.message : String(error)}\n\n${L2_ANNOUNCER_USAGE}`,
    );
    process.exit(2);
  }
  if (config === null) {
    process.stdout.write(L2_ANNOUNCER_USAGE);
    return;
  }
  const logger = createLogger({ level: config.logLevel, destination: process.stderr });
  const { kubeConfig } = loadKubeConfig({ kubeconfigPath: config.kubeconfig });
  const announcement = startL2Announcement({
    kubeConfig,
    nodeName: config.nodeName,
    leaseNamespace: config.leaseNamespace,
    interface: config.interface,
    netns: config.netns,
    loadBalancerClass: config.loadBalancerClass,
    timing: config.timing,
    logger,
  });
  const shutdown = (): void => {
    announcement.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  await announcement.synced;
  process.stdout.write('READY\n');
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
