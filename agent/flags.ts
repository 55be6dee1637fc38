/**
 * `portico-agent`'s command line, with kube-proxy's flag names and defaults. Parsing is pure: it
 * returns the configuration or throws a {@link FlagError}, which the entrypoint prints with the
 * usage and turns into exit code 2.
 */
import { parseArgs } from 'node:util';
import { LOG_LEVELS } from '../controllers/runtime/logging.ts';
import { parseBindAddress } from './healthcheck/proxy-health.ts';
import { IPVS_SCHEDULERS, type IpvsScheduler, isIpvsScheduler } from './ipvs/render.ts';
import type { ProxyMode } from './proxier.ts';
import { cidrFamilyOf } from './state/ip.ts';

/** The agent's settings after parsing. */
export interface AgentConfig {
  readonly mode: ProxyMode;
  /** The node name; the machine's hostname unless overridden. */
  readonly hostname: string;
  readonly kubeconfig: string | undefined;
  readonly clusterCIDRs: readonly string[];
  readonly nodePortAddresses: readonly string[];
  readonly masqueradeAll: boolean;
  /** '' for the default proxy (Services carrying the proxy-name label are someone else's). */
  readonly serviceProxyName: string;
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly healthzBindAddress: string;
  readonly metricsBindAddress: string;
  readonly cleanup: boolean;
  /** `--no-fallback`: with `--mode ipvs` on a kernel without IPVS, fail instead of running iptables. */
  readonly noFallback: boolean;
  /** `--ipvs-scheduler`: IPVS scheduler of Services without the `portico.dev/ipvs-scheduler` annotation. */
  readonly ipvsScheduler: IpvsScheduler;
  readonly logLevel: string | undefined;
}

/** A bad command line; the message is shown to the user as is. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

/** The `--help` text. */
export const USAGE = `Usage: portico-agent [flags]

Programs this node's Service rules from the Services and EndpointSlices of the cluster.

Flags:
  --mode iptables|nftables|ipvs     proxy mode (default iptables)
  --hostname-override NAME          this node's name (default: the hostname)
  --kubeconfig PATH                 kubeconfig file (default: KUBECONFIG, then in-cluster)
  --cluster-cidr CIDR[,CIDR]        pod CIDRs; traffic to cluster IPs from outside them is masqueraded
  --nodeport-addresses CIDR[,CIDR]  node addresses that accept node ports (default: all but loopback)
  --masquerade-all                  masquerade all traffic to cluster IPs
  --service-proxy-name NAME         handle only Services labelled service.kubernetes.io/service-proxy-name=NAME
  --min-sync-period DURATION        least time between syncs (default 1s)
  --sync-period DURATION            full resync and canary check period (default 30s)
  --healthz-bind-address HOST:PORT  /healthz and /livez (default 0.0.0.0:10256)
  --metrics-bind-address HOST:PORT  /metrics (default 127.0.0.1:10249)
  --cleanup                         remove every Portico rule of the mode and exit
  --no-fallback                     with --mode ipvs, exit with an error when the kernel lacks IPVS
                                    instead of falling back to iptables
  --ipvs-scheduler NAME             ${IPVS_SCHEDULERS.join('|')}: IPVS scheduler of Services without
                                    the portico.dev/ipvs-scheduler annotation (default rr)
  --log-level LEVEL                 ${LOG_LEVELS.join('|')} (default info)
  --help                            print this text
`;

const MODES: readonly ProxyMode[] = ['iptables', 'nftables', 'ipvs'];
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go duration as kube-proxy's flags take it (`500ms`, `30s`, `1m30s`), in ms. */
export function parseDuration(value: string, flag: string): number {
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== value)
    throw new FlagError(`${flag}: Invalid value: "${value}": must be a duration such as 500ms, 1s or 1m30s`);
  return parts.reduce((total, part) => total + Number(part[1]) * DURATION_UNITS[part[2]!]!, 0);
}

function cidrList(value: string | undefined, flag: string): string[] {
  if (value === undefined || value === '') return [];
  const cidrs = value.split(',').map((cidr) => cidr.trim());
  for (const cidr of cidrs)
    if (cidrFamilyOf(cidr) === null)
      throw new FlagError(`${flag}: Invalid value: "${cidr}": must be a valid CIDR`);
  return cidrs;
}

/** Parses `argv` (without the node and script paths); returns null when `--help` was asked. */
export function parseAgentFlags(argv: readonly string[], machineHostname: string): AgentConfig | null {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        mode: { type: 'string', default: 'iptables' },
        'hostname-override': { type: 'string' },
        kubeconfig: { type: 'string' },
        'cluster-cidr': { type: 'string' },
        'nodeport-addresses': { type: 'string' },
        'masquerade-all': { type: 'boolean', default: false },
        'service-proxy-name': { type: 'string', default: '' },
        'min-sync-period': { type: 'string', default: '1s' },
        'sync-period': { type: 'string', default: '30s' },
        'healthz-bind-address': { type: 'string', default: '0.0.0.0:10256' },
        'metrics-bind-address': { type: 'string', default: '127.0.0.1:10249' },
        cleanup: { type: 'boolean', default: false },
        'no-fallback': { type: 'boolean', default: false },
        'ipvs-scheduler': { type: 'string', default: 'rr' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    throw new FlagError(error instanceof Error ? error.message : String(error));
  }
  if (values['help'] === true) return null;
  const mode = values['mode'] as string;
  if (!(MODES as readonly string[]).includes(mode))
    throw new FlagError(`--mode: Unsupported value: "${mode}": supported values: "${MODES.join('", "')}"`);
  const logLevel = values['log-level'] as string | undefined;
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel))
    throw new FlagError(
      `--log-level: Unsupported value: "${logLevel}": supported values: "${LOG_LEVELS.join('", "')}"`,
    );
  const ipvsScheduler = values['ipvs-scheduler'] as string;
  if (!isIpvsScheduler(ipvsScheduler))
    throw new FlagError(
      `--ipvs-scheduler: Unsupported value: "${ipvsScheduler}": supported values: "${IPVS_SCHEDULERS.join('", "')}"`,
    );
  const minSyncPeriodMs = parseDuration(values['min-sync-period'] as string, '--min-sync-period');
  const syncPeriodMs = parseDuration(values['sync-period'] as string, '--sync-period');
  if (syncPeriodMs <= 0)
    throw new FlagError(`--sync-period: Invalid value: "${values['sync-period']}": must be greater than 0`);
  if (minSyncPeriodMs > syncPeriodMs)
    throw new FlagError(
      `--min-sync-period: Invalid value: "${values['min-sync-period']}": must be no greater than --sync-period (${values['sync-period']})`,
    );
  const hostname = (
    (values['hostname-override'] as string | undefined) ?? defaultHostname(machineHostname)
  ).trim();
  if (hostname === '')
    throw new FlagError('--hostname-override: Required value: the node name must not be empty');
  for (const flag of ['healthz-bind-address', 'metrics-bind-address']) {
    try {
      parseBindAddress(values[flag] as string, `--${flag}`);
    } catch (error) {
      throw new FlagError(error instanceof Error ? error.message : String(error));
    }
  }
  return {
    mode: mode as ProxyMode,
    hostname,
    kubeconfig: values['kubeconfig'] as string | undefined,
    clusterCIDRs: cidrList(values['cluster-cidr'] as string | undefined, '--cluster-cidr'),
    nodePortAddresses: cidrList(values['nodeport-addresses'] as string | undefined, '--nodeport-addresses'),
    masqueradeAll: values['masquerade-all'] === true,
    serviceProxyName: values['service-proxy-name'] as string,
    minSyncPeriodMs,
    syncPeriodMs,
    healthzBindAddress: values['healthz-bind-address'] as string,
    metricsBindAddress: values['metrics-bind-address'] as string,
    cleanup: values['cleanup'] === true,
    noFallback: values['no-fallback'] === true,
    ipvsScheduler,
    logLevel,
  };
}

/** Node names are lower case, as the kubelet registers them. */
function defaultHostname(hostname: string): string {
  return hostname.toLowerCase();
}
