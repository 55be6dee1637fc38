/**
 * Pure rendering of the desired state into `iptables-restore --noflush` input, following
 * kube-proxy's iptables proxier (pkg/proxy/iptables/proxier.go `syncProxyRules`) rule for rule,
 * with `PORTICO-` chains. Output order is deterministic: Service ports sorted by name, endpoints by
 * `ip:port`.
 *
 * Packet path, for orientation:
 *   nat PREROUTING/OUTPUT → PORTICO-SERVICES → (cluster IP) PORTICO-SVC|SVL → PORTICO-SEP → DNAT
 *                                            → (external IP, LB IP, node port) PORTICO-EXT → SVC|SVL
 *                                            → (LB IP with source ranges) PORTICO-FW → PORTICO-EXT
 *   filter: REJECT/DROP for destinations without usable endpoints, DROP for LB traffic the FW refused.
 *   nat POSTROUTING → PORTICO-POSTROUTING: MASQUERADE what PORTICO-MARK-MASQ marked.
 */
import type { RenderedRuleset, SyncScope } from '../proxier.ts';
import {
  type CommonRenderOptions,
  masqueradeMark,
  planServicePortChains,
  podCIDROf,
} from '../render-common.ts';
import { cidrContains, ipFamilyOf } from '../state/ip.ts';
import type { DesiredState, EndpointState, NodeInfo, ServicePortState } from '../state/types.ts';
import {
  EXTERNAL_SERVICES_CHAIN,
  endpointChainName,
  FIXED_CHAINS,
  FORWARD_CHAIN,
  MARK_MASQ_CHAIN,
  NODEPORTS_CHAIN,
  POSTROUTING_CHAIN,
  PROXY_FIREWALL_CHAIN,
  SERVICES_CHAIN,
  serviceChainNames,
} from './names.ts';

/** Settings of the iptables proxier that shape the rules (the agent's flags). */
export interface IptablesRenderOptions extends CommonRenderOptions {
  /** Above this many endpoints, per-endpoint comments are left out to shrink the ruleset (upstream: 1000). */
  readonly largeClusterEndpointsThreshold: number;
  /**
   * Drop conntrack-INVALID packets in FORWARD, as upstream does unless
   * `nf_conntrack_tcp_be_liberal` is set.
   */
  readonly dropInvalidForward: boolean;
}

/** Upstream's defaults. */
export const DEFAULT_IPTABLES_RENDER_OPTIONS: IptablesRenderOptions = {
  clusterCIDRs: [],
  masqueradeAll: false,
  masqueradeBit: 14,
  nodePortAddresses: [],
  largeClusterEndpointsThreshold: 1000,
  dropInvalidForward: true,
};

/** A table the proxier writes. */
export type IptablesTable = 'filter' | 'nat';

/**
 * A rule in a built-in chain that sends packets into the proxier's chains. These are not part of
 * the restore input (that would need a flush of chains other programs own); apply ensures them
 * with `-C`/`-I`, and cleanup deletes them.
 */
export interface JumpRule {
  readonly table: IptablesTable;
  readonly chain: 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';
  /** Rule specification after the chain name, as argv words. */
  readonly args: readonly string[];
}

/** Output of {@link renderIptablesRules}. */
export interface IptablesRuleset extends RenderedRuleset {
  readonly mode: 'iptables';
  /** `*filter … COMMIT` restore input. */
  readonly filter: string;
  /** `*nat … COMMIT` restore input. */
  readonly nat: string;
  /** Jumps from built-in chains; ensured on full syncs. */
  readonly jumps: readonly JumpRule[];
  /** Number of lines in `filter` + `nat`. */
  readonly lineCount: number;
}

function jump(
  table: IptablesTable,
  chain: JumpRule['chain'],
  target: string,
  comment: string,
  newOnly: boolean,
) {
  const args = ['-m', 'comment', '--comment', comment];
  if (newOnly) args.push('-m', 'conntrack', '--ctstate', 'NEW');
  args.push('-j', target);
  return { table, chain, args };
}

/** The jumps kube-proxy installs, with our chain names and comments (the seed's "service portals"). */
export const JUMP_RULES: readonly JumpRule[] = [
  jump('filter', 'INPUT', EXTERNAL_SERVICES_CHAIN, 'portico externally-visible service portals', true),
  jump('filter', 'FORWARD', EXTERNAL_SERVICES_CHAIN, 'portico externally-visible service portals', true),
  jump('filter', 'INPUT', NODEPORTS_CHAIN, 'portico health check service ports', false),
  jump('filter', 'FORWARD', SERVICES_CHAIN, 'portico service portals', true),
  jump('filter', 'OUTPUT', SERVICES_CHAIN, 'portico service portals', true),
  jump('filter', 'FORWARD', FORWARD_CHAIN, 'portico forwarding rules', false),
  jump('filter', 'INPUT', PROXY_FIREWALL_CHAIN, 'portico load balancer firewall', true),
  jump('filter', 'OUTPUT', PROXY_FIREWALL_CHAIN, 'portico load balancer firewall', true),
  jump('filter', 'FORWARD', PROXY_FIREWALL_CHAIN, 'portico load balancer firewall', true),
  jump('nat', 'OUTPUT', SERVICES_CHAIN, 'portico service portals', false),
  jump('nat', 'PREROUTING', SERVICES_CHAIN, 'portico service portals', false),
  jump('nat', 'POSTROUTING', POSTROUTING_CHAIN, 'portico postrouting rules', false),
];

/** Quotes a comment for iptables-restore, which splits words like a shell. */
function comment(text: string): string {
  return `-m comment --comment "${text}"`;
}

/** `%0.10f` of 1/n, the statistic probability of upstream's n-th-from-last endpoint rule. */
export function probability(remaining: number): string {
  return (1 / remaining).toFixed(10);
}

function chainLine(chain: string): string {
  return `:${chain} - [0:0]`;
}

/** Per-service chain writers share this context. */
interface RenderContext {
  readonly masqueradeAll: boolean;
  /** `-s <cidr>` of the local detector, or null when no cluster CIDR of the family is configured. */
  readonly podCIDR: string | null;
  readonly endpointComments: boolean;
  readonly nodeAddresses: readonly string[];
}

function writeServiceToEndpointRules(
  rules: string[],
  context: RenderContext,
  port: ServicePortState,
  chain: string,
  endpoints: readonly EndpointState[],
  endpointChains: ReadonlyMap<EndpointState, string>,
): void {
  const endpointComment = (endpoint: EndpointState) =>
    context.endpointComments ? `${comment(`${port.name} -> ${endpoint.hostPort}`)} ` : '';
  if (port.affinityTimeoutSeconds !== null) {
    for (const endpoint of endpoints) {
      const target = endpointChains.get(endpoint)!;
      rules.push(
        `-A ${chain} ${endpointComment(endpoint)}-m recent --name ${target} --rcheck --seconds ${port.affinityTimeoutSeconds} --reap -j ${target}`,
      );
    }
  }
  const count = endpoints.length;
  endpoints.forEach((endpoint, index) => {
    const statistic =
      index < count - 1 ? `-m statistic --mode random --probability ${probability(count - index)} ` : '';
    rules.push(`-A ${chain} ${endpointComment(endpoint)}${statistic}-j ${endpointChains.get(endpoint)!}`);
  });
}

/** Rules of one Service port while it is rendered, by where they go. */
interface PortRuleLines {
  readonly filterServices: string[];
  readonly filterExternal: string[];
  readonly filterNodePorts: string[];
  readonly filterFirewall: string[];
  readonly natServices: string[];
  readonly natNodePorts: string[];
  /** Per-service chains; a partial sync skips them for unchanged Services. */
  readonly chains: string[];
  /** Rules of those chains. */
  readonly rules: string[];
}

/**
 * Rules of one Service port as flat text, one block per destination, every line ending in a
 * newline. Lines are joined once, when the port is rendered (and cached); a sync only concatenates
 * a few blocks per Service instead of joining 430,000 template results at 10,000 Services.
 */
interface PortRules {
  readonly filterServices: string;
  readonly filterExternal: string;
  readonly filterNodePorts: string;
  readonly filterFirewall: string;
  readonly natServices: string;
  readonly natNodePorts: string;
  readonly chains: readonly string[];
  readonly rules: string;
}

function countLines(text: string): number {
  let count = 0;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count++;
  return count;
}

function block(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/**
 * Rendered ports by state object. The tracker hands out the same frozen object while a Service
 * is unchanged, so a partial sync re-renders only what changed; the key guards against a reuse
 * under other options.
 */
const renderedPorts = new WeakMap<ServicePortState, { readonly key: string; readonly rules: PortRules }>();

function contextKey(context: RenderContext): string {
  return `${context.podCIDR}|${context.masqueradeAll}|${context.endpointComments}|${context.nodeAddresses.join(',')}`;
}

function renderServicePortCached(context: RenderContext, key: string, port: ServicePortState): PortRules {
  const cached = renderedPorts.get(port);
  if (cached !== undefined && cached.key === key) return cached.rules;
  const rules = renderServicePort(context, port);
  renderedPorts.set(port, { key, rules });
  return rules;
}

function renderServicePort(context: RenderContext, port: ServicePortState): PortRules {
  const out: PortRuleLines = {
    filterServices: [],
    filterExternal: [],
    filterNodePorts: [],
    filterFirewall: [],
    natServices: [],
    natNodePorts: [],
    chains: [],
    rules: [],
  };
  const protocol = port.protocol.toLowerCase();
  const match = `-m ${protocol} -p ${protocol}`;
  const names = serviceChainNames(port.name, port.protocol);
  const { clusterEndpoints, localEndpoints, hasEndpoints } = port;
  const {
    usesClusterChain,
    usesLocalChain,
    hasInternalEndpoints,
    hasExternalEndpoints,
    usesExternalChain,
    usesFirewallChain,
  } = planServicePortChains(port);
  const internalChain = port.internalPolicyLocal ? names.local : names.cluster;
  const externalPolicyChain = port.externalPolicyLocal ? names.local : names.cluster;
  const loadBalancerChain = usesFirewallChain ? names.firewall : names.external;

  let internalFilterTarget = 'ACCEPT';
  let internalFilterComment = '';
  let externalFilterTarget = 'ACCEPT';
  let externalFilterComment = '';
  if (!hasEndpoints) {
    // Nothing anywhere: REJECT (ICMP port unreachable) so clients fail at once, not by timeout.
    internalFilterTarget = 'REJECT';
    externalFilterTarget = 'REJECT';
    internalFilterComment = `${port.name} has no endpoints`;
    externalFilterComment = internalFilterComment;
  } else {
    if (!hasInternalEndpoints) {
      internalFilterTarget = 'DROP';
      internalFilterComment = `${port.name} has no local endpoints`;
    }
    if (!hasExternalEndpoints) {
      externalFilterTarget = 'DROP';
      externalFilterComment = `${port.name} has no local endpoints`;
    }
  }

  const destination = (ip: string) => `-d ${ip} --dport ${port.port}`;
  if (hasInternalEndpoints) {
    out.natServices.push(
      `-A ${SERVICES_CHAIN} ${comment(`${port.name} cluster IP`)} ${match} ${destination(port.clusterIP)} -j ${internalChain}`,
    );
  } else {
    out.filterServices.push(
      `-A ${SERVICES_CHAIN} ${comment(internalFilterComment)} ${match} ${destination(port.clusterIP)} -j ${internalFilterTarget}`,
    );
  }

  for (const externalIP of port.externalIPs) {
    if (hasEndpoints)
      out.natServices.push(
        `-A ${SERVICES_CHAIN} ${comment(`${port.name} external IP`)} ${match} ${destination(externalIP)} -j ${names.external}`,
      );
    if (!hasExternalEndpoints)
      out.filterExternal.push(
        `-A ${EXTERNAL_SERVICES_CHAIN} ${comment(externalFilterComment)} ${match} ${destination(externalIP)} -j ${externalFilterTarget}`,
      );
  }

  for (const loadBalancerIP of port.loadBalancerIPs) {
    if (hasEndpoints)
      out.natServices.push(
        `-A ${SERVICES_CHAIN} ${comment(`${port.name} loadbalancer IP`)} ${match} ${destination(loadBalancerIP)} -j ${loadBalancerChain}`,
      );
    if (usesFirewallChain)
      out.filterFirewall.push(
        `-A ${PROXY_FIREWALL_CHAIN} ${comment(`${port.name} traffic not accepted by ${names.firewall}`)} ${match} ${destination(loadBalancerIP)} -j DROP`,
      );
  }
  if (!hasExternalEndpoints) {
    for (const loadBalancerIP of port.loadBalancerIPs)
      out.filterExternal.push(
        `-A ${EXTERNAL_SERVICES_CHAIN} ${comment(externalFilterComment)} ${match} ${destination(loadBalancerIP)} -j ${externalFilterTarget}`,
      );
  }

  if (port.nodePort !== 0) {
    // Node ports are not subject to loadBalancerSourceRanges, as upstream: the range check
    // applies to the LB IP only.
    if (hasEndpoints)
      out.natNodePorts.push(
        `-A ${NODEPORTS_CHAIN} ${comment(port.name)} ${match} --dport ${port.nodePort} -j ${names.external}`,
      );
    if (!hasExternalEndpoints)
      out.filterExternal.push(
        `-A ${EXTERNAL_SERVICES_CHAIN} ${comment(externalFilterComment)} -m addrtype --dst-type LOCAL ${match} --dport ${port.nodePort} -j ${externalFilterTarget}`,
      );
  }

  if (port.healthCheckNodePort !== 0) {
    // Accepted whether or not local endpoints exist: the health server must be able to answer 503.
    out.filterNodePorts.push(
      `-A ${NODEPORTS_CHAIN} ${comment(`${port.name} health check node port`)} -m tcp -p tcp --dport ${port.healthCheckNodePort} -j ACCEPT`,
    );
  }

  const rules = out.rules;
  const own = (chain: string) => {
    out.chains.push(chain);
  };

  if (hasInternalEndpoints) {
    const masqueradeMatch = `${comment(`${port.name} cluster IP`)} ${match} ${destination(port.clusterIP)}`;
    if (context.masqueradeAll) {
      rules.push(`-A ${internalChain} ${masqueradeMatch} -j ${MARK_MASQ_CHAIN}`);
    } else if (context.podCIDR !== null) {
      // Off-cluster clients reaching a cluster IP (a static route to any node) may be forwarded to
      // another node; without SNAT the reply would bypass this node's conntrack.
      rules.push(`-A ${internalChain} ${masqueradeMatch} ! -s ${context.podCIDR} -j ${MARK_MASQ_CHAIN}`);
    }
  }

  if (usesExternalChain) {
    own(names.external);
    if (!port.externalPolicyLocal) {
      // Cluster policy may send the packet to another node; SNAT keeps the reply path symmetric.
      rules.push(
        `-A ${names.external} ${comment(`masquerade traffic for ${port.name} external destinations`)} -j ${MARK_MASQ_CHAIN}`,
      );
    } else {
      if (context.podCIDR !== null) {
        // Pods reaching an external address behave as if they went out to the balancer and came
        // back: neither traffic policy applies to them.
        rules.push(
          `-A ${names.external} ${comment(`pod traffic for ${port.name} external destinations`)} -s ${context.podCIDR} -j ${names.cluster}`,
        );
      }
      // The host itself picks a local (often the LB) address as source, so it must be SNATed.
      rules.push(
        `-A ${names.external} ${comment(`masquerade LOCAL traffic for ${port.name} external destinations`)} -m addrtype --src-type LOCAL -j ${MARK_MASQ_CHAIN}`,
      );
      rules.push(
        `-A ${names.external} ${comment(`route LOCAL traffic for ${port.name} external destinations`)} -m addrtype --src-type LOCAL -j ${names.cluster}`,
      );
    }
    if (hasExternalEndpoints) rules.push(`-A ${names.external} -j ${externalPolicyChain}`);
  }

  if (usesFirewallChain) {
    own(names.firewall);
    const prefix = `-A ${names.firewall} ${comment(`${port.name} loadbalancer IP`)}`;
    let allowFromNode = false;
    for (const range of port.loadBalancerSourceRanges) {
      rules.push(`${prefix} -s ${range} -j ${names.external}`);
      if (context.nodeAddresses.some((address) => cidrContains(range, address))) allowFromNode = true;
    }
    // A VIP bound on this node loops a node's own request back with the VIP as source.
    if (allowFromNode) {
      for (const loadBalancerIP of port.loadBalancerIPs)
        rules.push(`${prefix} -s ${loadBalancerIP} -j ${names.external}`);
    }
    rules.push(
      `${prefix} ${comment(`other traffic to ${port.name} will be dropped by ${PROXY_FIREWALL_CHAIN}`)}`,
    );
  }

  const endpointChains = new Map<EndpointState, string>();
  const reachable = new Set<EndpointState>();
  if (usesClusterChain) for (const endpoint of clusterEndpoints) reachable.add(endpoint);
  if (usesLocalChain) for (const endpoint of localEndpoints) reachable.add(endpoint);
  for (const endpoint of reachable)
    endpointChains.set(endpoint, endpointChainName(port.name, port.protocol, endpoint.hostPort));

  if (usesClusterChain) {
    own(names.cluster);
    writeServiceToEndpointRules(rules, context, port, names.cluster, clusterEndpoints, endpointChains);
  }
  if (usesLocalChain) {
    own(names.local);
    writeServiceToEndpointRules(rules, context, port, names.local, localEndpoints, endpointChains);
  }

  const serviceComment = context.endpointComments ? `${comment(port.name)} ` : '';
  for (const [endpoint, chain] of [...endpointChains].sort((a, b) => (a[1] < b[1] ? -1 : 1))) {
    own(chain);
    // Hairpin: a pod reaching itself through the Service must be SNATed, or it would answer
    // itself directly and the client would drop the reply.
    rules.push(`-A ${chain} ${serviceComment}-s ${endpoint.ip} -j ${MARK_MASQ_CHAIN}`);
    const affinity = port.affinityTimeoutSeconds !== null ? `-m recent --name ${chain} --set ` : '';
    rules.push(
      `-A ${chain} ${serviceComment}${affinity}${match} -j DNAT --to-destination ${endpoint.hostPort}`,
    );
  }
  return {
    filterServices: block(out.filterServices),
    filterExternal: block(out.filterExternal),
    filterNodePorts: block(out.filterNodePorts),
    filterFirewall: block(out.filterFirewall),
    natServices: block(out.natServices),
    natNodePorts: block(out.natNodePorts),
    chains: out.chains,
    rules: block(out.rules),
  };
}

/**
 * Renders the iptables rules of one family. With `scope.changedServices = 'all'` every chain is
 * rewritten; otherwise the per-service chains of unchanged Services are left out (they stay as
 * they are in the kernel), and the dispatch chains are rewritten in full. Chains in
 * `scope.existingObjects` that are no longer wanted are flushed and deleted.
 */
export function renderIptablesRules(
  desired: DesiredState,
  node: NodeInfo,
  scope: SyncScope,
  options: IptablesRenderOptions = DEFAULT_IPTABLES_RENDER_OPTIONS,
): IptablesRuleset {
  const family = desired.family;
  const mark = masqueradeMark(options);
  let endpointCount = 0;
  for (const port of desired.servicePorts) endpointCount += port.endpoints.length;
  const context: RenderContext = {
    masqueradeAll: options.masqueradeAll,
    podCIDR: podCIDROf(options, family),
    endpointComments: endpointCount <= options.largeClusterEndpointsThreshold,
    nodeAddresses: node.addresses.filter((address) => ipFamilyOf(address) === family),
  };
  const key = contextKey(context);
  // Per-port text blocks, concatenated once at the end.
  const out = {
    filterServices: [] as string[],
    filterExternal: [] as string[],
    filterNodePorts: [] as string[],
    filterFirewall: [] as string[],
    natServices: [] as string[],
    natNodePorts: [] as string[],
    serviceChains: [] as string[],
    serviceRules: [] as string[],
    owned: new Set<string>(),
  };
  const changed = scope.changedServices;
  for (const port of desired.servicePorts) {
    const rules = renderServicePortCached(context, key, port);
    out.filterServices.push(rules.filterServices);
    out.filterExternal.push(rules.filterExternal);
    out.filterNodePorts.push(rules.filterNodePorts);
    out.filterFirewall.push(rules.filterFirewall);
    out.natServices.push(rules.natServices);
    out.natNodePorts.push(rules.natNodePorts);
    for (const chain of rules.chains) out.owned.add(chain);
    // Unchanged Services' chains stay in the kernel as they are; only their names are needed.
    if (changed === 'all' || changed.has(port.serviceKey)) {
      for (const chain of rules.chains) out.serviceChains.push(chain);
      out.serviceRules.push(rules.rules);
    }
  }

  const forward: string[] = [];
  if (options.dropInvalidForward) forward.push(`-A ${FORWARD_CHAIN} -m conntrack --ctstate INVALID -j DROP`);
  forward.push(
    `-A ${FORWARD_CHAIN} ${comment('portico forwarding rules')} -m mark --mark ${mark}/${mark} -j ACCEPT`,
    `-A ${FORWARD_CHAIN} ${comment('portico forwarding conntrack rule')} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  );
  const filter = [
    '*filter\n',
    block(FIXED_CHAINS.filter.map(chainLine)),
    ...out.filterServices,
    ...out.filterExternal,
    block(forward),
    ...out.filterNodePorts,
    ...out.filterFirewall,
    'COMMIT\n',
  ].join('');

  const stale = [...scope.existingObjects].filter((chain) => !out.owned.has(chain)).sort();
  const postrouting = [
    `-A ${POSTROUTING_CHAIN} -m mark ! --mark ${mark}/${mark} -j RETURN`,
    `-A ${POSTROUTING_CHAIN} -j MARK --xor-mark ${mark}`,
    `-A ${POSTROUTING_CHAIN} ${comment('portico service traffic requiring SNAT')} -j MASQUERADE --random-fully`,
    `-A ${MARK_MASQ_CHAIN} -j MARK --or-mark ${mark}`,
  ];
  const nodePortsComment = comment(
    'portico service nodeports; NOTE: this must be the last rule in this chain',
  );
  const nodePortsJump: string[] = [];
  if (options.nodePortAddresses.length === 0) {
    const loopback = family === 'IPv4' ? '127.0.0.0/8' : '::1/128';
    nodePortsJump.push(
      `-A ${SERVICES_CHAIN} ${nodePortsComment} -m addrtype --dst-type LOCAL ! -d ${loopback} -j ${NODEPORTS_CHAIN}`,
    );
  } else {
    for (const address of context.nodeAddresses) {
      if (options.nodePortAddresses.some((cidr) => cidrContains(cidr, address)))
        nodePortsJump.push(`-A ${SERVICES_CHAIN} ${nodePortsComment} -d ${address} -j ${NODEPORTS_CHAIN}`);
    }
  }
  // Declaration order changes nothing in the resulting tables (libiptc keeps chains sorted by
  // name), but two lookups in iptables-restore depend on it:
  // - libiptc inserts each new chain into a sorted list, walking from an index point; in
  //   descending order every new chain is the smallest yet and lands at the start of that walk.
  // - libxtables remembers declared chain names in a 512-bucket hash with new names at the head
  //   of each bucket, and walks a bucket for every `-j`; PORTICO-MARK-MASQ, the target of about
  //   one rule in four, is declared last so it is found first.
  // Together they cut a 10,000-Service restore by about a fifth (see NOTES.md).
  out.serviceChains.sort().reverse();
  const natChains: string[] = FIXED_CHAINS.nat.filter((chain) => chain !== MARK_MASQ_CHAIN);
  for (const chains of [out.serviceChains, stale, [MARK_MASQ_CHAIN]])
    for (const chain of chains) natChains.push(chain);
  const nat = [
    '*nat\n',
    block(natChains.map(chainLine)),
    block(postrouting),
    ...out.natServices,
    block(nodePortsJump),
    ...out.natNodePorts,
    ...out.serviceRules,
    block(stale.map((chain) => `-X ${chain}`)),
    'COMMIT\n',
  ].join('');
  const lineCount = countLines(filter) + countLines(nat);

  return {
    mode: 'iptables',
    family,
    full: changed === 'all',
    ownedObjects: out.owned,
    filter,
    nat,
    jumps: JUMP_RULES,
    lineCount,
  };
}

/** The whole restore input of a ruleset: filter, then nat. */
export function restoreInput(ruleset: IptablesRuleset): string {
  return ruleset.filter + ruleset.nat;
}
