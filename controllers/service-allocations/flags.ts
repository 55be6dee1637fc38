/**
 * The flags of Service allocation (allocators, admission webhooks, repair loop), parsed apart
 * from the controller manager's own so the entrypoint only has to accept them.
 */
import { parseArgs } from 'node:util';
import { type ClusterIPRange, parseServiceClusterIPRanges } from '../../allocators/cluster-ip-range.ts';
import { NodePortRange } from '../../allocators/node-port-range.ts';
import { DEFAULT_REPAIR_INTERVAL_MS } from '../allocator-repair/controller.ts';
import { goDurationMs } from '../runtime/duration.ts';
import { type ListenAddress, parseListenAddress } from '../runtime/manager.ts';

/** Portico's default service CIDR: inside 198.18.0.0/15, the benchmarking range. */
export const DEFAULT_SERVICE_CLUSTER_IP_RANGE = '198.19.0.0/16';

/** `parseArgs` option declarations of these flags, for the entrypoint's strict parser. */
export const SERVICE_ALLOCATION_FLAG_OPTIONS = {
  'service-cluster-ip-range': { type: 'string' },
  'service-node-port-range': { type: 'string' },
  'webhook-addr': { type: 'string' },
  'tls-cert-file': { type: 'string' },
  'tls-key-file': { type: 'string' },
  'allocator-repair-interval': { type: 'string' },
} as const;

/** `--help` lines of these flags. */
export const SERVICE_ALLOCATION_FLAG_HELP: [string, string][] = [
  [
    '--service-cluster-ip-range <cidr>[,<cidr>]',
    `ClusterIP range, or one per family for dual-stack (default ${DEFAULT_SERVICE_CLUSTER_IP_RANGE})`,
  ],
  ['--service-node-port-range <first-last>', 'NodePort range (default 30000-32767)'],
  ['--webhook-addr <host:port>', 'where the admission webhooks are served over HTTPS (default :9443)'],
  ['--tls-cert-file <path>', 'webhook serving certificate (PEM); reloaded when it changes'],
  ['--tls-key-file <path>', 'webhook serving key (PEM); reloaded when it changes'],
  ['--allocator-repair-interval <duration>', 'time between allocator repair passes (default 3m)'],
];

/** The decoded flags. */
export interface ServiceAllocationConfig {
  /** Service CIDRs, default family first. */
  readonly serviceCIDRs: readonly ClusterIPRange[];
  /** NodePort range. */
  readonly nodePortRange: NodePortRange;
  /** Webhook listen address. */
  readonly webhookAddress: ListenAddress;
  /** Serving certificate and key; undefined when neither flag is given (no webhook server). */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** Repair interval in ms. */
  readonly repairIntervalMs: number;
}

function parseDurationMs(value: string, flag: string): number {
  const ms = goDurationMs(value);
  if (ms === undefined || ms <= 0) {
    throw new Error(
      `${flag}: Invalid value: ${JSON.stringify(value)}: must be a positive duration such as "30s" or "3m"`,
    );
  }
  return ms;
}

/**
 * Reads these flags from `argv`, ignoring every other flag (the entrypoint validates those).
 * Throws an Error whose message names the flag, the value and what is allowed.
 */
export function parseServiceAllocationFlags(argv: readonly string[]): ServiceAllocationConfig {
  const { values } = parseArgs({
    args: [...argv],
    strict: false,
    allowPositionals: true,
    options: SERVICE_ALLOCATION_FLAG_OPTIONS,
  });
  const text = (name: keyof typeof SERVICE_ALLOCATION_FLAG_OPTIONS): string | undefined => {
    const value = values[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new Error(`--${name}: Required value: the flag needs a value`);
    return value;
  };
  const certFile = text('tls-cert-file');
  const keyFile = text('tls-key-file');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new Error(
      `--tls-cert-file and --tls-key-file: Required value: give both or neither (without them no webhook server runs)`,
    );
  }
  return {
    serviceCIDRs: parseServiceClusterIPRanges(
      text('service-cluster-ip-range') ?? DEFAULT_SERVICE_CLUSTER_IP_RANGE,
    ),
    nodePortRange: new NodePortRange(text('service-node-port-range')),
    webhookAddress: parseListenAddress(text('webhook-addr') ?? ':9443', '--webhook-addr'),
    tls: certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : undefined,
    repairIntervalMs:
      text('allocator-repair-interval') === undefined
        ? DEFAULT_REPAIR_INTERVAL_MS
        : parseDurationMs(text('allocator-repair-interval')!, '--allocator-repair-interval'),
  };
}
