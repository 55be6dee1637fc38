/**
 * What the iptables, nftables and IPVS renderers share: the agent flags every mode obeys in the
 * same way, and the values derived from them.
 */
import { cidrFamilyOf } from './state/ip.ts';
import { type IPFamily, isExternallyAccessible, type ServicePortState } from './state/types.ts';

/** Render settings common to every proxier mode (the agent's flags). */
export interface CommonRenderOptions {
  /**
   * `--cluster-cidr`: pod CIDRs (either family). Traffic from outside them to a cluster IP is
   * masqueraded, and pod traffic to external destinations of a Local-policy Service is
   * short-circuited to the cluster chain. Without one of the family, neither happens.
   */
  readonly clusterCIDRs: readonly string[];
  /** `--masquerade-all`: masquerade every packet sent to a cluster IP. */
  readonly masqueradeAll: boolean;
  /** `--iptables-masquerade-bit`: bit of the packet mark that requests SNAT (upstream default 14). */
  readonly masqueradeBit: number;
  /**
   * `--nodeport-addresses`: CIDRs selecting the node addresses that accept node ports; empty means
   * every local address. Loopback never accepts node ports: that needs `route_localnet`, which the
   * agent does not set.
   */
  readonly nodePortAddresses: readonly string[];
}

/** The packet mark requesting SNAT, as the 32-bit hex literal iptables and nft both accept. */
export function masqueradeMark(options: CommonRenderOptions): string {
  return `0x${(1 << options.masqueradeBit).toString(16).padStart(8, '0')}`;
}

/** The pod CIDR of one family from `--cluster-cidr`, or null when none is of that family. */
export function podCIDROf(options: CommonRenderOptions, family: IPFamily): string | null {
  return options.clusterCIDRs.find((cidr) => cidrFamilyOf(cidr) === family) ?? null;
}

/**
 * Which of a Service port's chains the rules need, from its traffic policies alone; the iptables
 * and nftables renderers name and fill the chains differently but must agree on these decisions.
 */
export interface ServicePortChainPlan {
  /** The chain over all ready endpoints exists. */
  readonly usesClusterChain: boolean;
  /** The chain over this node's endpoints exists. */
  readonly usesLocalChain: boolean;
  /** Cluster-internal traffic has an endpoint it may use (under `internalTrafficPolicy`). */
  readonly hasInternalEndpoints: boolean;
  /** Outside traffic has an endpoint it may use (under `externalTrafficPolicy`). */
  readonly hasExternalEndpoints: boolean;
  /**
   * The external chain exists. It also short-circuits pod and host traffic, so it exists whenever
   * any endpoint does, even without one that outside traffic may use.
   */
  readonly usesExternalChain: boolean;
  /** The LoadBalancer source-range firewall chain exists. */
  readonly usesFirewallChain: boolean;
}

/** Decides which chains a Service port needs; see {@link ServicePortChainPlan}. */
export function planServicePortChains(port: ServicePortState): ServicePortChainPlan {
  const { clusterEndpoints, localEndpoints, hasEndpoints } = port;
  const accessible = isExternallyAccessible(port);
  const usesClusterEndpoints = !port.internalPolicyLocal || accessible;
  const usesLocalEndpoints = port.internalPolicyLocal || (port.externalPolicyLocal && accessible);
  return {
    usesClusterChain: clusterEndpoints.length > 0 && usesClusterEndpoints,
    usesLocalChain: localEndpoints.length > 0 && usesLocalEndpoints,
    hasInternalEndpoints: port.internalPolicyLocal ? localEndpoints.length > 0 : hasEndpoints,
    hasExternalEndpoints: port.externalPolicyLocal ? localEndpoints.length > 0 : hasEndpoints,
    usesExternalChain: hasEndpoints && accessible,
    usesFirewallChain:
      hasEndpoints && port.loadBalancerIPs.length > 0 && port.loadBalancerSourceRanges.length > 0,
  };
}
