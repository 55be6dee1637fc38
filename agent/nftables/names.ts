/**
 * Names in Portico's nftables tables. Fixed chains, sets and maps keep kube-proxy's nftables names
 * (our table is separate, so they cannot clash with kube-proxy's); per-service names follow
 * upstream's readable `<prefix><HASH8>-<namespace>/<service>/<protocol>/<port>` form so that
 * `nft list table ip portico` says which Service a chain belongs to. The hash reuses the
 * iptables proxier's, so a chain here and `PORTICO-SVC-<hash>` there share their first 8 characters.
 */
import { endpointChainName, servicePortHash } from '../iptables/names.ts';
import type { EndpointState, IPFamily, ServicePortState, ServiceProtocol } from '../state/types.ts';

/** The table name in both families. */
export const TABLE_NAME = 'portico';

/** nftables address family of a table: one table per IP family, as the agent runs one proxier per family. */
export function tableFamily(family: IPFamily): 'ip' | 'ip6' {
  return family === 'IPv4' ? 'ip' : 'ip6';
}

/** nat: dispatch of every new connection through the verdict maps. */
export const SERVICES_CHAIN = 'services';
/** nat postrouting: SNAT of packets carrying the masquerade mark. */
export const MASQUERADING_CHAIN = 'masquerading';
/** Sets the masquerade mark. */
export const MARK_FOR_MASQUERADE_CHAIN = 'mark-for-masquerade';
/** Target of Services without endpoints: ICMP port unreachable, so clients fail at once. */
export const REJECT_CHAIN = 'reject-chain';
/** filter: loadBalancerSourceRanges, through `firewall-ips`. */
export const FIREWALL_CHECK_CHAIN = 'firewall-check';
/** filter: reject/drop for cluster, external and LB IPs without usable endpoints. */
export const SERVICE_ENDPOINTS_CHECK_CHAIN = 'service-endpoints-check';
/** filter: reject/drop for node ports without usable endpoints. */
export const NODEPORT_ENDPOINTS_CHECK_CHAIN = 'nodeport-endpoints-check';
/** filter, after DNAT: a cluster IP on a port no Service defines is rejected. */
export const CLUSTER_IPS_CHECK_CHAIN = 'cluster-ips-check';

/** Set of every active cluster IP. */
export const CLUSTER_IPS_SET = 'cluster-ips';
/** Set of `endpoint . endpoint` address pairs: DNATed traffic from an endpoint to itself is masqueraded. */
export const HAIRPIN_SET = 'hairpin-endpoints';
/** Set of node addresses accepting node ports; exists only with `--nodeport-addresses`. */
export const NODEPORT_IPS_SET = 'nodeport-ips';
/** Verdict map `address . protocol . port` → per-service chain (cluster, external and LB IPs). */
export const SERVICE_IPS_MAP = 'service-ips';
/** Verdict map `protocol . port` → external chain of a node port. */
export const SERVICE_NODEPORTS_MAP = 'service-nodeports';
/** Verdict map `LB IP . protocol . port` → firewall chain. */
export const FIREWALL_IPS_MAP = 'firewall-ips';
/** Verdict map `address . protocol . port` → reject or drop. */
export const NO_ENDPOINT_SERVICES_MAP = 'no-endpoint-services';

/**
 * Map `cluster IP . protocol . port . slot` → `endpoint address . port` of one L4 protocol: the
 * endpoints of the Service ports that pick one through a shared {@link randomEndpointChainName}
 * chain. One map per protocol because nft 1.0.6 ties the port in the map's data to a protocol
 * (a protocol-neutral `th dport` there is refused once the map is read back from the kernel).
 */
export function endpointSlotsMapName(protocol: ServiceProtocol): string {
  return `endpoint-slots-${protocol.toLowerCase()}`;
}

/**
 * The chain shared by every such Service port of `protocol` with `count` endpoints: it draws a
 * slot below `count` and DNATs to that slot's endpoint in {@link endpointSlotsMapName}. The slash
 * makes it an owned chain for {@link isServiceChain}.
 */
export function randomEndpointChainName(protocol: ServiceProtocol, count: number): string {
  return `random-endpoint/${protocol.toLowerCase()}/${count}`;
}
/** Verdict map `protocol . port` → reject or drop. */
export const NO_ENDPOINT_NODEPORTS_MAP = 'no-endpoint-nodeports';

/** One base chain: where netfilter calls into our table. */
export interface BaseChain {
  readonly name: string;
  readonly type: 'filter' | 'nat';
  readonly hook: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
  /** nft priority, numeric: nft before 1.0.7 accepts `dstnat` only on the prerouting hook. */
  readonly priority: number;
}

/**
 * kube-proxy's base chains and priorities (dstnat is -100, srcnat 100): the filter checks run 10
 * before DNAT (so they see the Service address) except `filter-output-post-dnat`, which must see
 * the translated address.
 */
export const BASE_CHAINS: readonly BaseChain[] = [
  { name: 'filter-prerouting', type: 'filter', hook: 'prerouting', priority: -110 },
  { name: 'filter-input', type: 'filter', hook: 'input', priority: -110 },
  { name: 'filter-forward', type: 'filter', hook: 'forward', priority: -110 },
  { name: 'filter-output', type: 'filter', hook: 'output', priority: -110 },
  { name: 'filter-output-post-dnat', type: 'filter', hook: 'output', priority: -90 },
  { name: 'nat-prerouting', type: 'nat', hook: 'prerouting', priority: -100 },
  { name: 'nat-output', type: 'nat', hook: 'output', priority: -100 },
  { name: 'nat-postrouting', type: 'nat', hook: 'postrouting', priority: 100 },
];

/** Fixed regular chains, in declaration order. */
export const FIXED_CHAINS: readonly string[] = [
  SERVICES_CHAIN,
  MASQUERADING_CHAIN,
  MARK_FOR_MASQUERADE_CHAIN,
  REJECT_CHAIN,
  FIREWALL_CHECK_CHAIN,
  SERVICE_ENDPOINTS_CHECK_CHAIN,
  NODEPORT_ENDPOINTS_CHECK_CHAIN,
  CLUSTER_IPS_CHECK_CHAIN,
];

/** Per-service chains of one Service port. */
export interface NftServiceChainNames {
  readonly cluster: string;
  readonly local: string;
  readonly external: string;
  readonly firewall: string;
}

/** `namespace/service/protocol/portName`: the readable part of per-service names. */
function serviceBase(port: ServicePortState): string {
  const portName =
    port.name.length > port.serviceKey.length ? port.name.slice(port.serviceKey.length + 1) : '';
  return `${port.serviceKey}/${port.protocol.toLowerCase()}/${portName}`;
}

/** Chain names of a Service port. */
export function nftServiceChainNames(port: ServicePortState): NftServiceChainNames {
  const base = `${servicePortHash(port.name, port.protocol).slice(0, 8)}-${serviceBase(port)}`;
  return {
    cluster: `service-${base}`,
    local: `local-${base}`,
    external: `external-${base}`,
    firewall: `firewall-${base}`,
  };
}

/** The endpoint part of affinity set names; nft names cannot hold colons. */
function endpointBase(port: ServicePortState, endpoint: EndpointState): string {
  const hash = endpointChainName(port.name, port.protocol, endpoint.hostPort).slice(
    'PORTICO-SEP-'.length,
    20,
  );
  return `${hash}-${serviceBase(port)}__${endpoint.ip.replaceAll(':', '.')}/${endpoint.port}`;
}

const AFFINITY_SET_PREFIX = 'affinity-';

/** ClientIP affinity set of one endpoint: sources recently sent there. */
export function affinitySetName(port: ServicePortState, endpoint: EndpointState): string {
  return `${AFFINITY_SET_PREFIX}${endpointBase(port, endpoint)}`;
}

/** True for a set named by {@link affinitySetName}. */
export function isAffinitySet(set: string): boolean {
  return set.startsWith(AFFINITY_SET_PREFIX);
}

/**
 * True for a chain created per Service or per endpoint count (only those names contain a slash):
 * the chains a sync adds and removes as Services come and go.
 */
export function isServiceChain(chain: string): boolean {
  return chain.includes('/');
}
