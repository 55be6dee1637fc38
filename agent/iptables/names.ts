/**
 * Chain names of the iptables proxier. They mirror kube-proxy's with `PORTICO-` in place of
 * `KUBE-`, so both proxies can run side by side and `iptables -t nat -L` reads the same way.
 * Per-service hashes are computed exactly as upstream's `portProtoHash`, which lets an operator
 * match `PORTICO-SVC-NPX46M4PTMTKRN6Y` to kube-proxy's `KUBE-SVC-NPX46M4PTMTKRN6Y` at a glance;
 * the prefix alone keeps the names apart.
 */
import { hash } from 'node:crypto';
import type { ServiceProtocol } from '../state/types.ts';

/** nat and filter: dispatch on destination address and port. */
export const SERVICES_CHAIN = 'PORTICO-SERVICES';
/** filter: REJECT/DROP for external destinations without usable endpoints. */
export const EXTERNAL_SERVICES_CHAIN = 'PORTICO-EXTERNAL-SERVICES';
/** nat: node ports → external chains; filter: health check node ports accepted. */
export const NODEPORTS_CHAIN = 'PORTICO-NODEPORTS';
/** nat: SNAT of packets carrying the masquerade mark. */
export const POSTROUTING_CHAIN = 'PORTICO-POSTROUTING';
/** nat: sets the masquerade mark. */
export const MARK_MASQ_CHAIN = 'PORTICO-MARK-MASQ';
/** filter: lets marked and established service traffic through FORWARD. */
export const FORWARD_CHAIN = 'PORTICO-FORWARD';
/** filter: drops load-balancer traffic that PORTICO-FW-* did not accept. */
export const PROXY_FIREWALL_CHAIN = 'PORTICO-PROXY-FIREWALL';
/**
 * Empty chain in every table the proxier writes. If it disappears someone flushed the table, and
 * the agent runs a full sync instead of a partial one (which would reference missing chains).
 */
export const CANARY_CHAIN = 'PORTICO-PROXY-CANARY';

/** Prefixes of per-service chains; every chain starting with one of them is ours to delete. */
export const SERVICE_CHAIN_PREFIXES = [
  'PORTICO-SVC-',
  'PORTICO-SVL-',
  'PORTICO-EXT-',
  'PORTICO-FW-',
  'PORTICO-SEP-',
] as const;

/** The fixed chains of each table, in the order they are declared. */
export const FIXED_CHAINS = {
  filter: [
    SERVICES_CHAIN,
    EXTERNAL_SERVICES_CHAIN,
    FORWARD_CHAIN,
    NODEPORTS_CHAIN,
    PROXY_FIREWALL_CHAIN,
    CANARY_CHAIN,
  ],
  nat: [SERVICES_CHAIN, NODEPORTS_CHAIN, POSTROUTING_CHAIN, MARK_MASQ_CHAIN, CANARY_CHAIN],
} as const;

/** Longest chain name iptables accepts. */
export const MAX_CHAIN_NAME_LENGTH = 28;

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** First 16 characters of RFC 4648 base32 (80 bits need exactly the first 10 bytes). */
function base32Prefix16(bytes: Uint8Array): string {
  let text = '';
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < 10; i++) {
    buffer = ((buffer << 8) | bytes[i]!) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      text += BASE32_ALPHABET[(buffer >> bits) & 31];
    }
  }
  return text;
}

function hash16(text: string): string {
  // The one-shot hash skips the Hash object: a full sync of 10,000 Services hashes 110,000 names.
  return base32Prefix16(hash('sha256', text, 'buffer'));
}

/** Upstream's portProtoHash: the service port name and the lower-case protocol, concatenated. */
export function servicePortHash(servicePortName: string, protocol: ServiceProtocol): string {
  return hash16(servicePortName + protocol.toLowerCase());
}

/** The per-service chains of one Service port. */
export interface ServiceChainNames {
  /** Cluster-policy dispatch to endpoints. */
  readonly cluster: string;
  /** Local-policy dispatch to node-local endpoints. */
  readonly local: string;
  /** Entry for node ports, external IPs and load-balancer IPs. */
  readonly external: string;
  /** loadBalancerSourceRanges filter. */
  readonly firewall: string;
}

/** Chain names of a Service port. */
export function serviceChainNames(servicePortName: string, protocol: ServiceProtocol): ServiceChainNames {
  const hash = servicePortHash(servicePortName, protocol);
  return {
    cluster: `PORTICO-SVC-${hash}`,
    local: `PORTICO-SVL-${hash}`,
    external: `PORTICO-EXT-${hash}`,
    firewall: `PORTICO-FW-${hash}`,
  };
}

/** Chain of one endpoint of a Service port; `hostPort` is `ip:port` with IPv6 bracketed. */
export function endpointChainName(
  servicePortName: string,
  protocol: ServiceProtocol,
  hostPort: string,
): string {
  return `PORTICO-SEP-${hash16(servicePortName + protocol.toLowerCase() + hostPort)}`;
}

/** True for a chain this proxier creates per Service or endpoint. */
export function isServiceChain(chain: string): boolean {
  return SERVICE_CHAIN_PREFIXES.some((prefix) => chain.startsWith(prefix));
}
