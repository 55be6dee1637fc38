/**
 * The controller manager's LoadBalancer flags, parsed on their own so the entrypoint only spreads
 * their declarations and help lines into its own.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_LOAD_BALANCER_CLASS } from '../../api/labels.ts';

/** `parseArgs` option declarations of these flags, for the entrypoint's strict parser. */
export const LOAD_BALANCER_FLAG_OPTIONS = {
  'load-balancer-class': { type: 'string' },
} as const;

/** `--help` lines of these flags. */
export const LOAD_BALANCER_FLAG_HELP: [string, string][] = [
  [
    '--load-balancer-class <class>',
    `spec.loadBalancerClass given pool addresses besides an unset class (default ${DEFAULT_LOAD_BALANCER_CLASS})`,
  ],
];

/** The decoded flags. */
export interface LoadBalancerConfig {
  /** The `spec.loadBalancerClass` handled besides an unset one. */
  readonly loadBalancerClass: string;
}

const DNS_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const QUALIFIED_CLASS = new RegExp(
  `^${DNS_LABEL}(\\.${DNS_LABEL})*/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`,
);

/**
 * Decodes the LoadBalancer flags from the full argument list (other flags are ignored). The class
 * is checked as upstream checks `spec.loadBalancerClass`: a label-style name with a domain prefix.
 */
export function parseLoadBalancerFlags(argv: readonly string[]): LoadBalancerConfig {
  const { values } = parseArgs({
    args: [...argv],
    strict: false,
    allowPositionals: true,
    options: LOAD_BALANCER_FLAG_OPTIONS,
  });
  const value = values['load-balancer-class'];
  if (value === undefined) return { loadBalancerClass: DEFAULT_LOAD_BALANCER_CLASS };
  if (typeof value !== 'string' || !QUALIFIED_CLASS.test(value)) {
    throw new Error(
      `--load-balancer-class: Invalid value: ${JSON.stringify(value)}: must be a label-style name with a domain prefix, such as ${DEFAULT_LOAD_BALANCER_CLASS}`,
    );
  }
  return { loadBalancerClass: value };
}
