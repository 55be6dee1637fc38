/**
 * The agent's desired state: what every proxier (iptables, nftables, IPVS) renders from. It is
 * computed from Services and EndpointSlices by {@link ./tracker.ts} and is immutable, so a render
 * can run while the next changes are already being recorded.
 */

/** An IP family; each family gets its own desired state and its own proxier, as upstream's MetaProxier. */
export type IPFamily = 'IPv4' | 'IPv6';

/** The two families in the order the agent syncs them. */
export const IP_FAMILIES: readonly IPFamily[] = ['IPv4', 'IPv6'];

/** L4 protocol of a Service port, spelled as the Kubernetes API spells it. */
export type ServiceProtocol = 'TCP' | 'UDP' | 'SCTP';

/** One backend of a Service port, as kube-proxy sees it after merging the Service's EndpointSlices. */
export interface EndpointState {
  /** First address of the slice endpoint; kube-proxy ignores the others too. */
  readonly ip: string;
  /** Port resolved by name from the slice's port list. */
  readonly port: number;
  /** `ip:port`, with IPv6 bracketed (`[fd00::1]:80`), the form used in chain hashes and comments. */
  readonly hostPort: string;
  /** `conditions.ready`; an unset condition counts as ready, as the API documents. */
  readonly ready: boolean;
  /** `conditions.serving`; unset means "same as ready". */
  readonly serving: boolean;
  /** `conditions.terminating`; unset means false. */
  readonly terminating: boolean;
  /** The endpoint's `nodeName` is this agent's node. */
  readonly isLocal: boolean;
  /** Zones from `hints.forZones`, sorted. */
  readonly zoneHints: readonly string[];
  /** Nodes from `hints.forNodes`, sorted. */
  readonly nodeHints: readonly string[];
}

/**
 * Everything a proxier needs about one port of one Service in one IP family. Field names follow
 * the Service API; derived fields (`clusterEndpoints`, `localEndpoints`, `hasEndpoints`) follow
 * upstream's `CategorizeEndpoints`.
 */
export interface ServicePortState {
  /** Upstream's ServicePortName string: `namespace/name:portName`, or `namespace/name` for an unnamed port. */
  readonly name: string;
  /** `namespace/name` of the Service; the unit of change tracking. */
  readonly serviceKey: string;
  readonly family: IPFamily;
  readonly protocol: ServiceProtocol;
  readonly port: number;
  /** The Service's cluster IP of this family. */
  readonly clusterIP: string;
  /** 0 when the Service has no node port. */
  readonly nodePort: number;
  /** `spec.externalIPs` of this family. */
  readonly externalIPs: readonly string[];
  /** `status.loadBalancer.ingress[].ip` of this family whose `ipMode` is VIP or unset. */
  readonly loadBalancerIPs: readonly string[];
  /** `spec.loadBalancerSourceRanges` of this family, as CIDRs. */
  readonly loadBalancerSourceRanges: readonly string[];
  /** ClientIP affinity timeout in seconds, or null when `sessionAffinity` is None. */
  readonly affinityTimeoutSeconds: number | null;
  /** `externalTrafficPolicy: Local` on a Service reachable from outside. */
  readonly externalPolicyLocal: boolean;
  /** `internalTrafficPolicy: Local`. */
  readonly internalPolicyLocal: boolean;
  /** 0 unless a LoadBalancer Service with Local policy has one. */
  readonly healthCheckNodePort: number;
  /**
   * The Service's `portico.dev/ipvs-scheduler` annotation as written, '' when absent. Only the IPVS
   * mode reads it, and it judges the value: the state carries what the user wrote.
   */
  readonly ipvsScheduler: string;
  /** Every endpoint of the port, in `hostPort` order. */
  readonly endpoints: readonly EndpointState[];
  /** Endpoints for Cluster-policy traffic (empty when the port uses none). */
  readonly clusterEndpoints: readonly EndpointState[];
  /** Endpoints for Local-policy traffic (empty when the port uses none). */
  readonly localEndpoints: readonly EndpointState[];
  /** Some ready or serving-terminating endpoint exists anywhere in the cluster. */
  readonly hasEndpoints: boolean;
}

/** The desired state of one IP family: every proxied Service port, sorted by `name` then protocol. */
export interface DesiredState {
  readonly family: IPFamily;
  readonly servicePorts: readonly ServicePortState[];
}

/** Facts about the node the agent runs on that change how rules are rendered. */
export interface NodeInfo {
  readonly name: string;
  /** `topology.kubernetes.io/zone` of the node, or '' when unset. */
  readonly zone: string;
  /** The node's own addresses (both families); used for `--nodeport-addresses` and the firewall's hairpin rule. */
  readonly addresses: readonly string[];
}

/** True when the port can be reached through a node port, an external IP or a load-balancer IP. */
export function isExternallyAccessible(port: ServicePortState): boolean {
  return port.nodePort !== 0 || port.externalIPs.length > 0 || port.loadBalancerIPs.length > 0;
}
