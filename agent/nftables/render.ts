/**
 * Pure rendering of the desired state into an `nft -f` script, following kube-proxy's nftables
 * proxier (pkg/proxy/nftables/proxier.go): static chains that look packets up in verdict maps, so
 * the cost of a new connection does not grow with the number of Services, plus at most four
 * chains per Service port (none per endpoint: see endpointDispatchRules), and none for a port
 * reached only through its cluster IP (see usesSharedDispatch). Every script is one transaction.
 *
 * Packet path, for orientation:
 *   nat prerouting/output → services: `daddr . proto . port vmap @service-ips`
 *        → (plain cluster IP) random-endpoint/<proto>/<n> → `@endpoint-slots-<proto>` → DNAT
 *        → (cluster IP) service-…|local-… → numgen → DNAT
 *        → (external IP, LB IP) external-… → service-…|local-…
 *     then `fib daddr type local … vmap @service-nodeports` → external-…
 *   filter prerouting/output: firewall-check (`@firewall-ips` → firewall-…: source ranges)
 *   filter input/forward/output: no-endpoint maps → reject-chain or drop; cluster-ips-check
 *   nat postrouting → masquerading: SNAT hairpin traffic and what mark-for-masquerade marked.
 *
 * What a sync sends: a full sync re-declares and refills every fixed chain and map and every
 * per-service chain; a partial sync sends only map element deletions and additions (diffed
 * against the previous ruleset's `ownedObjects`) and the chains of changed Services. Chains that
 * are no longer needed are flushed in the sync that drops them and deleted by the next one, as
 * upstream does: kernels before 6.2 may still hold a verdict-map reference to a chain in the
 * transaction that removed the map element.
 */
import type { RenderedRuleset, SyncScope } from '../proxier.ts';
import {
  type CommonRenderOptions,
  masqueradeMark,
  planServicePortChains,
  podCIDROf,
} from '../render-common.ts';
import { cidrContains, cidrFamilyOf, ipFamilyOf, joinHostPort } from '../state/ip.ts';
import {
  type DesiredState,
  type EndpointState,
  type IPFamily,
  isExternallyAccessible,
  type NodeInfo,
  type ServicePortState,
  type ServiceProtocol,
} from '../state/types.ts';

const SERVICE_PROTOCOLS: readonly ServiceProtocol[] = ['TCP', 'UDP', 'SCTP'];

import {
  affinitySetName,
  BASE_CHAINS,
  CLUSTER_IPS_CHECK_CHAIN,
  CLUSTER_IPS_SET,
  endpointSlotsMapName,
  FIREWALL_CHECK_CHAIN,
  FIREWALL_IPS_MAP,
  FIXED_CHAINS,
  HAIRPIN_SET,
  MARK_FOR_MASQUERADE_CHAIN,
  MASQUERADING_CHAIN,
  NO_ENDPOINT_NODEPORTS_MAP,
  NO_ENDPOINT_SERVICES_MAP,
  NODEPORT_ENDPOINTS_CHECK_CHAIN,
  NODEPORT_IPS_SET,
  nftServiceChainNames,
  REJECT_CHAIN,
  randomEndpointChainName,
  SERVICE_ENDPOINTS_CHECK_CHAIN,
  SERVICE_IPS_MAP,
  SERVICE_NODEPORTS_MAP,
  SERVICES_CHAIN,
  TABLE_NAME,
  tableFamily,
} from './names.ts';

/** Settings of the nftables proxier that shape the rules (the agent's flags). */
export interface NftablesRenderOptions extends CommonRenderOptions {
  /** Service CIDRs: addresses in them that no Service holds are dropped instead of routed. */
  readonly serviceCIDRs: readonly string[];
}

/** Upstream's defaults. */
export const DEFAULT_NFTABLES_RENDER_OPTIONS: NftablesRenderOptions = {
  clusterCIDRs: [],
  masqueradeAll: false,
  masqueradeBit: 14,
  nodePortAddresses: [],
  serviceCIDRs: [],
};

/** Output of {@link renderNftablesRules}. */
export interface NftablesRuleset extends RenderedRuleset {
  readonly mode: 'nftables';
  /** Input of `nft -f -`: one transaction. */
  readonly script: string;
  /** Number of statements (lines) in `script`. */
  readonly statementCount: number;
}

/** A map or set element; `value` is null for plain sets. */
interface Element {
  readonly map: string;
  readonly key: string;
  readonly value: string | null;
}

/** The objects one Service port owns. */
interface PortObjects {
  /** Per-service chains with their rules (statement bodies after the chain name), in order. */
  readonly chains: ReadonlyMap<string, readonly string[]>;
  /** Chains shared with other ports (a {@link randomEndpointChainName} chain), written once whoever needs them. */
  readonly sharedChains: ReadonlyMap<string, readonly string[]>;
  readonly elements: readonly Element[];
  /** `ownedObjects` entries of its chains, affinity sets and elements, computed once per port. */
  readonly ownedKeys: readonly string[];
  /** Per affinity set: its owned key, name and timeout. */
  readonly affinityKeys: readonly (readonly [key: string, set: string, timeout: number])[];
  /** Per element: its owned key. */
  readonly elementKeys: readonly string[];
}

/** Per-family words of the rule language. */
interface FamilyWords {
  readonly family: 'ip' | 'ip6';
  readonly addressType: 'ipv4_addr' | 'ipv6_addr';
  readonly loopback: string;
}

function familyWords(family: IPFamily): FamilyWords {
  return family === 'IPv4'
    ? { family: 'ip', addressType: 'ipv4_addr', loopback: '127.0.0.0/8' }
    : { family: 'ip6', addressType: 'ipv6_addr', loopback: '::1' };
}

interface RenderContext {
  readonly words: FamilyWords;
  readonly masqueradeAll: boolean;
  readonly podCIDR: string | null;
  readonly nodeAddresses: readonly string[];
}

const GOTO_REJECT = `goto ${REJECT_CHAIN}`;

/** Keys of `ownedObjects`; tab-separated so that element keys (which hold spaces) split cleanly. */
const OWNED_CHAIN = 'chain';
const OWNED_FLUSHED_CHAIN = 'flushed-chain';
const OWNED_SET = 'set';
const OWNED_ELEMENT = 'element';

function ownedKey(...parts: readonly (string | number)[]): string {
  return parts.join('\t');
}

/** The `ownedObjects` entry of a per-service chain. */
export function ownedChainKey(chain: string): string {
  return ownedKey(OWNED_CHAIN, chain);
}

/** The `ownedObjects` entry of an affinity set. */
export function ownedSetKey(set: string, timeoutSeconds: number): string {
  return ownedKey(OWNED_SET, set, timeoutSeconds);
}

function elementKey(element: Element): string {
  return element.value === null
    ? ownedKey(OWNED_ELEMENT, element.map, element.key)
    : ownedKey(OWNED_ELEMENT, element.map, element.key, element.value);
}

function endpointDispatchRules(
  context: RenderContext,
  port: ServicePortState,
  endpoints: readonly EndpointState[],
): string[] {
  const { family } = context.words;
  const protocol = port.protocol.toLowerCase();
  const rules: string[] = [];
  const dnat = (endpoint: EndpointState) => {
    const target = `dnat to ${joinHostPort(endpoint.ip, endpoint.port)}`;
    if (port.affinityTimeoutSeconds === null) return target;
    return `update @${affinitySetName(port, endpoint)} { ${family} saddr } ${target}`;
  };
  // A returning client goes back to its endpoint; the update refreshes its timeout.
  if (port.affinityTimeoutSeconds !== null)
    for (const endpoint of endpoints)
      rules.push(
        `${family} saddr @${affinitySetName(port, endpoint)} meta l4proto ${protocol} ${dnat(endpoint)}`,
      );
  // Endpoint i of n is taken with probability 1/(n-i) when the earlier ones were not, which makes
  // every endpoint equally likely (iptables' statistic rules, with numgen). Two departures from
  // upstream keep nft 1.0.6 fast at scale: no `numgen … vmap { … }` (one anonymous map per
  // Service, loaded in superlinear time) and no chain per endpoint (nft reads every chain of the
  // table before each transaction, so chain count sets the cost of even a one-endpoint sync).
  endpoints.forEach((endpoint, index) => {
    const remaining = endpoints.length - index;
    const choice = remaining > 1 ? `numgen random mod ${remaining} == 0 ` : '';
    rules.push(`meta l4proto ${protocol} ${choice}${dnat(endpoint)}`);
  });
  return rules;
}

/**
 * Rendered ports by state object: the tracker hands out the same frozen object while a Service is
 * unchanged, so a sync re-renders only what changed. The key guards against reuse under other options.
 */
const renderedPorts = new WeakMap<
  ServicePortState,
  { readonly key: string; readonly objects: PortObjects }
>();

function contextKey(context: RenderContext): string {
  return `${context.words.family}|${context.podCIDR}|${context.masqueradeAll}|${context.nodeAddresses.join(',')}`;
}

/**
 * True for a port reached only through its cluster IP, without affinity, with endpoints: its
 * endpoint is picked by a shared chain and an {@link endpointSlotsMapName} map, so it owns no chain.
 * An endpoint change is then map elements only, which nft 1.0.6 applies without listing every
 * chain and the kernel commits without re-validating every chain of the table (rules with DNAT
 * or jumps make it walk all chains reachable from the base chains: 30,000 Services, 0.3 s).
 */
function usesSharedDispatch(port: ServicePortState): boolean {
  return (
    port.affinityTimeoutSeconds === null &&
    !isExternallyAccessible(port) &&
    planServicePortChains(port).hasInternalEndpoints
  );
}

/** The rules of {@link randomEndpointChainName}(protocol, count). */
function randomEndpointRules(context: RenderContext, protocol: ServiceProtocol, count: number): string[] {
  const { family } = context.words;
  const rules: string[] = [];
  // The chain is reached only from the cluster IP's `service-ips` element, so no address match.
  if (context.masqueradeAll) rules.push(`jump ${MARK_FOR_MASQUERADE_CHAIN}`);
  else if (context.podCIDR !== null)
    // Off-cluster clients may be forwarded to another node; SNAT keeps the reply on this node.
    rules.push(`${family} saddr != ${context.podCIDR} jump ${MARK_FOR_MASQUERADE_CHAIN}`);
  rules.push(
    `dnat ${family} addr . port to ${family} daddr . meta l4proto . th dport . numgen random mod ${count} map @${endpointSlotsMapName(protocol)}`,
  );
  return rules;
}

function renderSharedDispatchPort(context: RenderContext, port: ServicePortState): PortObjects {
  const protocol = port.protocol.toLowerCase();
  const endpoints = port.internalPolicyLocal ? port.localEndpoints : port.clusterEndpoints;
  const chain = randomEndpointChainName(port.protocol, endpoints.length);
  const elements: Element[] = [
    { map: CLUSTER_IPS_SET, key: port.clusterIP, value: null },
    {
      map: SERVICE_IPS_MAP,
      key: `${port.clusterIP} . ${protocol} . ${port.port}`,
      value: `goto ${chain}`,
    },
  ];
  // Slot i holds the i-th endpoint in hostPort order, so the same endpoints give the same elements.
  for (const [slot, endpoint] of endpoints.entries())
    elements.push({
      map: endpointSlotsMapName(port.protocol),
      key: `${port.clusterIP} . ${protocol} . ${port.port} . ${slot}`,
      value: `${endpoint.ip} . ${endpoint.port}`,
    });
  for (const endpoint of [...endpoints].sort((x, y) => (x.hostPort < y.hostPort ? -1 : 1)))
    elements.push({ map: HAIRPIN_SET, key: `${endpoint.ip} . ${endpoint.ip}`, value: null });
  const elementKeys = elements.map(elementKey);
  return {
    chains: new Map(),
    sharedChains: new Map([[chain, randomEndpointRules(context, port.protocol, endpoints.length)]]),
    elements,
    ownedKeys: [ownedChainKey(chain), ...elementKeys],
    affinityKeys: [],
    elementKeys,
  };
}

function renderServicePort(context: RenderContext, port: ServicePortState): PortObjects {
  if (usesSharedDispatch(port)) return renderSharedDispatchPort(context, port);
  const { words } = context;
  const chains = new Map<string, string[]>();
  const affinitySets = new Map<string, number>();
  const elements: Element[] = [];
  const protocol = port.protocol.toLowerCase();
  const names = nftServiceChainNames(port);
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
  // Nothing anywhere: reject, so clients are refused at once. Endpoints elsewhere but none that
  // this traffic may use (Local policies): drop, as upstream.
  const noEndpointVerdict = hasEndpoints ? 'drop' : GOTO_REJECT;

  const addressKey = (address: string, servicePort: number) => `${address} . ${protocol} . ${servicePort}`;
  elements.push({ map: CLUSTER_IPS_SET, key: port.clusterIP, value: null });
  if (hasInternalEndpoints)
    elements.push({
      map: SERVICE_IPS_MAP,
      key: addressKey(port.clusterIP, port.port),
      value: `goto ${internalChain}`,
    });
  else
    elements.push({
      map: NO_ENDPOINT_SERVICES_MAP,
      key: addressKey(port.clusterIP, port.port),
      value: noEndpointVerdict,
    });

  for (const address of [...port.externalIPs, ...port.loadBalancerIPs]) {
    const key = addressKey(address, port.port);
    if (hasEndpoints) elements.push({ map: SERVICE_IPS_MAP, key, value: `goto ${names.external}` });
    if (!hasExternalEndpoints)
      elements.push({ map: NO_ENDPOINT_SERVICES_MAP, key, value: noEndpointVerdict });
  }
  if (usesFirewallChain)
    for (const address of port.loadBalancerIPs)
      elements.push({
        map: FIREWALL_IPS_MAP,
        key: addressKey(address, port.port),
        value: `goto ${names.firewall}`,
      });

  if (port.nodePort !== 0) {
    // Node ports ignore loadBalancerSourceRanges, as upstream: the ranges guard the LB IP only.
    const key = `${protocol} . ${port.nodePort}`;
    if (hasEndpoints) elements.push({ map: SERVICE_NODEPORTS_MAP, key, value: `goto ${names.external}` });
    if (!hasExternalEndpoints)
      elements.push({ map: NO_ENDPOINT_NODEPORTS_MAP, key, value: noEndpointVerdict });
  }

  const chain = (name: string) => {
    let rules = chains.get(name);
    if (rules === undefined) {
      rules = [];
      chains.set(name, rules);
    }
    return rules;
  };

  if (hasInternalEndpoints) {
    const match = `${words.family} daddr ${port.clusterIP} ${protocol} dport ${port.port}`;
    if (context.masqueradeAll) chain(internalChain).push(`${match} jump ${MARK_FOR_MASQUERADE_CHAIN}`);
    else if (context.podCIDR !== null)
      // Off-cluster clients may be forwarded to another node; SNAT keeps the reply on this node.
      chain(internalChain).push(
        `${match} ${words.family} saddr != ${context.podCIDR} jump ${MARK_FOR_MASQUERADE_CHAIN}`,
      );
  }

  if (usesExternalChain) {
    const rules = chain(names.external);
    if (!port.externalPolicyLocal) {
      // Cluster policy may send the packet to another node; SNAT keeps the reply path symmetric.
      rules.push(`jump ${MARK_FOR_MASQUERADE_CHAIN}`);
    } else {
      // Pods reaching an external address behave as if they went out to the balancer and came
      // back: neither traffic policy applies to them.
      if (context.podCIDR !== null)
        rules.push(`${words.family} saddr ${context.podCIDR} goto ${names.cluster}`);
      // The host picks a local (often the LB) address as source, so it must be SNATed.
      rules.push(`fib saddr type local jump ${MARK_FOR_MASQUERADE_CHAIN}`);
      rules.push(`fib saddr type local goto ${names.cluster}`);
    }
    if (hasExternalEndpoints) rules.push(`goto ${externalPolicyChain}`);
  }

  if (usesFirewallChain) {
    const allowed = [...port.loadBalancerSourceRanges];
    // A VIP bound on this node loops the node's own request back with the VIP as source.
    if (
      port.loadBalancerSourceRanges.some((range) => context.nodeAddresses.some((a) => cidrContains(range, a)))
    )
      allowed.push(...port.loadBalancerIPs);
    chain(names.firewall).push(`${words.family} saddr != { ${allowed.join(', ')} } drop`);
  }

  const reachable = new Set<EndpointState>();
  if (usesClusterChain) for (const endpoint of clusterEndpoints) reachable.add(endpoint);
  if (usesLocalChain) for (const endpoint of localEndpoints) reachable.add(endpoint);
  if (usesClusterChain) chain(names.cluster).push(...endpointDispatchRules(context, port, clusterEndpoints));
  if (usesLocalChain) chain(names.local).push(...endpointDispatchRules(context, port, localEndpoints));
  for (const endpoint of [...reachable].sort((x, y) => (x.hostPort < y.hostPort ? -1 : 1))) {
    // Hairpin: a pod reaching itself through the Service must be SNATed, or it would answer
    // itself directly and drop its own reply (matched in postrouting on source = destination).
    elements.push({ map: HAIRPIN_SET, key: `${endpoint.ip} . ${endpoint.ip}`, value: null });
    if (port.affinityTimeoutSeconds !== null)
      affinitySets.set(affinitySetName(port, endpoint), port.affinityTimeoutSeconds);
  }
  const affinityKeys = [...affinitySets].map(
    ([set, timeout]) => [ownedSetKey(set, timeout), set, timeout] as const,
  );
  const elementKeys = elements.map(elementKey);
  const ownedKeys = [
    ...[...chains.keys()].map(ownedChainKey),
    ...affinityKeys.map(([key]) => key),
    ...elementKeys,
  ];
  return { chains, sharedChains: new Map(), elements, ownedKeys, affinityKeys, elementKeys };
}

function renderServicePortCached(context: RenderContext, key: string, port: ServicePortState): PortObjects {
  const cached = renderedPorts.get(port);
  if (cached !== undefined && cached.key === key) return cached.objects;
  const objects = renderServicePort(context, port);
  renderedPorts.set(port, { key, objects });
  return objects;
}

/** The fixed part: table, base and fixed chains with their rules, static sets and maps. */
function renderStatic(
  out: string[],
  table: string,
  words: FamilyWords,
  options: NftablesRenderOptions,
  nodePortAddresses: readonly string[] | null,
): void {
  const mark = masqueradeMark(options);
  const addressMap = `type ${words.addressType} . inet_proto . inet_service : verdict ;`;
  const portMap = 'type inet_proto . inet_service : verdict ;';
  out.push(`add table ${table} { comment "rules for portico" ; }`);
  for (const base of BASE_CHAINS) {
    out.push(
      `add chain ${table} ${base.name} { type ${base.type} hook ${base.hook} priority ${base.priority} ; }`,
    );
    out.push(`flush chain ${table} ${base.name}`);
  }
  for (const name of FIXED_CHAINS) out.push(`add chain ${table} ${name}`, `flush chain ${table} ${name}`);
  const maps: [string, string, string][] = [
    ['set', CLUSTER_IPS_SET, `type ${words.addressType} ; comment "Active ClusterIPs" ;`],
    [
      'set',
      HAIRPIN_SET,
      `type ${words.addressType} . ${words.addressType} ; comment "endpoint . endpoint: a pod reaching itself through a Service" ;`,
    ],
    ['map', SERVICE_IPS_MAP, `${addressMap} comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ;`],
    ['map', SERVICE_NODEPORTS_MAP, `${portMap} comment "NodePort traffic" ;`],
    ...SERVICE_PROTOCOLS.map((protocol): [string, string, string] => [
      'map',
      endpointSlotsMapName(protocol),
      // The kernel keeps typeof and comment in 256 bytes of user data: the comment stays short.
      `typeof ${words.family} daddr . meta l4proto . th dport . numgen random mod 1 : ${words.family} daddr . ${protocol.toLowerCase()} dport ; comment "ClusterIP . protocol . port . slot : endpoint" ;`,
    ]),
    [
      'map',
      FIREWALL_IPS_MAP,
      `${addressMap} comment "destinations that are subject to LoadBalancerSourceRanges" ;`,
    ],
    [
      'map',
      NO_ENDPOINT_SERVICES_MAP,
      `${addressMap} comment "vmap to drop or reject packets to services with no endpoints" ;`,
    ],
    [
      'map',
      NO_ENDPOINT_NODEPORTS_MAP,
      `${portMap} comment "vmap to drop or reject packets to service nodeports with no endpoints" ;`,
    ],
  ];
  if (nodePortAddresses !== null)
    maps.push([
      'set',
      NODEPORT_IPS_SET,
      `type ${words.addressType} ; comment "IPs that accept NodePort traffic" ;`,
    ]);
  for (const [kind, name, spec] of maps)
    out.push(`add ${kind} ${table} ${name} { ${spec} }`, `flush ${kind} ${table} ${name}`);

  const rule = (chain: string, body: string) => out.push(`add rule ${table} ${chain} ${body}`);
  const newOnly = 'ct state new';
  rule('filter-prerouting', `${newOnly} jump ${FIREWALL_CHECK_CHAIN}`);
  rule('filter-input', `${newOnly} jump ${NODEPORT_ENDPOINTS_CHECK_CHAIN}`);
  rule('filter-input', `${newOnly} jump ${SERVICE_ENDPOINTS_CHECK_CHAIN}`);
  rule('filter-forward', `${newOnly} jump ${SERVICE_ENDPOINTS_CHECK_CHAIN}`);
  rule('filter-forward', `${newOnly} jump ${CLUSTER_IPS_CHECK_CHAIN}`);
  rule('filter-output', `${newOnly} jump ${SERVICE_ENDPOINTS_CHECK_CHAIN}`);
  rule('filter-output', `${newOnly} jump ${FIREWALL_CHECK_CHAIN}`);
  rule('filter-output-post-dnat', `${newOnly} jump ${CLUSTER_IPS_CHECK_CHAIN}`);
  rule('nat-prerouting', `jump ${SERVICES_CHAIN}`);
  rule('nat-output', `jump ${SERVICES_CHAIN}`);
  rule('nat-postrouting', `jump ${MASQUERADING_CHAIN}`);

  const tuple = `${words.family} daddr . meta l4proto . th dport`;
  // Node ports are never served on loopback: that needs route_localnet, which we do not set.
  const nodePortMatch =
    nodePortAddresses === null
      ? `fib daddr type local ${words.family} daddr != ${words.loopback}`
      : `${words.family} daddr @${NODEPORT_IPS_SET}`;
  rule(SERVICES_CHAIN, `${tuple} vmap @${SERVICE_IPS_MAP}`);
  rule(SERVICES_CHAIN, `${nodePortMatch} meta l4proto . th dport vmap @${SERVICE_NODEPORTS_MAP}`);
  rule(
    MASQUERADING_CHAIN,
    `ct status dnat ${words.family} saddr . ${words.family} daddr @${HAIRPIN_SET} masquerade fully-random`,
  );
  rule(MASQUERADING_CHAIN, `meta mark & ${mark} == 0 return`);
  // Clear the mark so that a packet looping back through the node is not masqueraded twice.
  rule(MASQUERADING_CHAIN, `meta mark set meta mark ^ ${mark}`);
  rule(MASQUERADING_CHAIN, 'masquerade fully-random');
  rule(MARK_FOR_MASQUERADE_CHAIN, `meta mark set meta mark | ${mark}`);
  rule(REJECT_CHAIN, 'reject');
  rule(FIREWALL_CHECK_CHAIN, `${tuple} vmap @${FIREWALL_IPS_MAP}`);
  rule(SERVICE_ENDPOINTS_CHECK_CHAIN, `${tuple} vmap @${NO_ENDPOINT_SERVICES_MAP}`);
  rule(
    NODEPORT_ENDPOINTS_CHECK_CHAIN,
    `${nodePortMatch} meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS_MAP}`,
  );
  // A cluster IP on a port no Service defines is refused instead of reaching a host process.
  rule(CLUSTER_IPS_CHECK_CHAIN, `${words.family} daddr @${CLUSTER_IPS_SET} reject`);
  const serviceCIDRs = options.serviceCIDRs.filter(
    (cidr) => cidrFamilyOf(cidr) === (words.family === 'ip' ? 'IPv4' : 'IPv6'),
  );
  if (serviceCIDRs.length > 0)
    rule(CLUSTER_IPS_CHECK_CHAIN, `${words.family} daddr { ${serviceCIDRs.join(', ')} } drop`);
}

/** `add element` / `delete element` statements, one per map, with the elements in order. */
function elementStatements(verb: 'add' | 'delete', table: string, elements: readonly Element[]): string[] {
  const byMap = new Map<string, string[]>();
  for (const element of elements) {
    const text = verb === 'add' && element.value !== null ? `${element.key} : ${element.value}` : element.key;
    let list = byMap.get(element.map);
    if (list === undefined) {
      list = [];
      byMap.set(element.map, list);
    }
    list.push(text);
  }
  return [...byMap].map(([map, list]) => `${verb} element ${table} ${map} { ${list.join(', ')} }`);
}

function parseOwned(key: string): string[] {
  return key.split('\t');
}

/** Owner of the objects no Service owns (the node port addresses) in {@link NftOwnedObjects}. */
const NODE_OWNER = '';

/** Layers a chain of partial syncs may stack before they are merged into one. */
const MAX_OWNED_LAYERS = 16;

/**
 * `ownedObjects` of an nftables ruleset, with what a partial sync needs to diff in O(changed):
 * the keys each Service owns and how many owners each key has (a hairpin element or a
 * random-endpoint chain is shared). A partial sync's set is a layer over the previous one that
 * holds only the changed counts, so the previous set stays valid (the agent reads it again after
 * a failed apply); layers are merged once {@link MAX_OWNED_LAYERS} stack up. Iteration builds a
 * plain set once per object.
 */
export class NftOwnedObjects implements ReadonlySet<string> {
  /** The render context the keys were rendered in; another context cannot reuse them. */
  readonly context: string;
  readonly #base: NftOwnedObjects | null;
  /** Owner counts: absolute in a root, changes over the base in a layer. */
  readonly #counts: ReadonlyMap<string, number>;
  /** Keys per owner (Service key, or {@link NODE_OWNER}): all in a root, the changed ones in a layer. */
  readonly #ownerKeys: ReadonlyMap<string, readonly string[]>;
  /** `flushed-chain` entries: chains flushed by this sync, to be deleted by the next. */
  readonly #flushed: ReadonlySet<string>;
  readonly #depth: number;
  readonly size: number;
  #materialized: Set<string> | null = null;

  constructor(
    context: string,
    base: NftOwnedObjects | null,
    counts: ReadonlyMap<string, number>,
    ownerKeys: ReadonlyMap<string, readonly string[]>,
    flushed: ReadonlySet<string>,
    size: number,
  ) {
    this.context = context;
    this.#base = base;
    this.#counts = counts;
    this.#ownerKeys = ownerKeys;
    this.#flushed = flushed;
    this.#depth = base === null ? 0 : base.#depth + 1;
    this.size = size;
  }

  /** How many owners `key` has (0 when it is not owned; `flushed-chain` entries are not counted). */
  ownerCount(key: string): number {
    let count = 0;
    for (let layer: NftOwnedObjects | null = this; layer !== null; layer = layer.#base)
      count += layer.#counts.get(key) ?? 0;
    return count;
  }

  /** The keys `owner` owned, or none. */
  keysOf(owner: string): readonly string[] {
    for (let layer: NftOwnedObjects | null = this; layer !== null; layer = layer.#base) {
      const keys = layer.#ownerKeys.get(owner);
      if (keys !== undefined) return keys;
    }
    return [];
  }

  /** The `flushed-chain` entries of this state. */
  get flushed(): ReadonlySet<string> {
    return this.#flushed;
  }

  /** True when the next partial sync should merge the layers instead of adding one. */
  get deep(): boolean {
    return this.#depth >= MAX_OWNED_LAYERS;
  }

  /** Absolute counts and keys per owner of this state, in a root's form. */
  flatten(): { counts: Map<string, number>; ownerKeys: Map<string, readonly string[]> } {
    const layers: NftOwnedObjects[] = [];
    for (let layer: NftOwnedObjects | null = this; layer !== null; layer = layer.#base) layers.push(layer);
    const counts = new Map<string, number>();
    const ownerKeys = new Map<string, readonly string[]>();
    for (const layer of layers.reverse()) {
      for (const [key, change] of layer.#counts) {
        const count = (counts.get(key) ?? 0) + change;
        if (count === 0) counts.delete(key);
        else counts.set(key, count);
      }
      for (const [owner, keys] of layer.#ownerKeys)
        if (keys.length === 0) ownerKeys.delete(owner);
        else ownerKeys.set(owner, keys);
    }
    return { counts, ownerKeys };
  }

  has(key: string): boolean {
    return this.#flushed.has(key) || this.ownerCount(key) > 0;
  }

  forEach(callback: (value: string, key: string, set: ReadonlySet<string>) => void, thisArg?: unknown): void {
    for (const key of this.#all()) callback.call(thisArg, key, key, this);
  }

  entries(): SetIterator<[string, string]> {
    return this.#all().entries();
  }

  keys(): SetIterator<string> {
    return this.#all().keys();
  }

  values(): SetIterator<string> {
    return this.#all().values();
  }

  [Symbol.iterator](): SetIterator<string> {
    return this.#all().values();
  }

  #all(): Set<string> {
    if (this.#materialized === null)
      this.#materialized = new Set([...this.flatten().counts.keys(), ...this.#flushed]);
    return this.#materialized;
  }
}

/** The statements of one sync, in the order {@link renderNftablesRules} writes them. */
interface SyncPlan {
  readonly chainStatements: string[];
  readonly flushStatements: string[];
  readonly ruleStatements: string[];
  readonly newSets: [string, number][];
  readonly elementsToAdd: Element[];
  readonly elementsToDelete: Element[];
  readonly staleChains: string[];
  readonly chainsToDelete: string[];
  readonly staleSets: string[];
}

function emptyPlan(): SyncPlan {
  return {
    chainStatements: [],
    flushStatements: [],
    ruleStatements: [],
    newSets: [],
    elementsToAdd: [],
    elementsToDelete: [],
    staleChains: [],
    chainsToDelete: [],
    staleSets: [],
  };
}

/** Adds the statements that (re)write `objects` of a port in this sync. */
function planPort(
  plan: SyncPlan,
  table: string,
  objects: PortObjects,
  full: boolean,
  isExisting: (key: string) => boolean,
  sharedChains: Map<string, readonly string[]>,
  wantedElements: Map<string, Element>,
): void {
  for (const [chain, rules] of objects.chains) {
    plan.chainStatements.push(`add chain ${table} ${chain}`);
    plan.flushStatements.push(`flush chain ${table} ${chain}`);
    for (const rule of rules) plan.ruleStatements.push(`add rule ${table} ${chain} ${rule}`);
  }
  // A shared chain is written once, and in a partial sync only when missing: rewriting its DNAT
  // rule would make the kernel re-validate the whole table.
  for (const [chain, rules] of objects.sharedChains)
    if (full || !isExisting(ownedChainKey(chain))) sharedChains.set(chain, rules);
  // Adding an existing set is a no-op that keeps its members: clients stay on their endpoint.
  for (const [setKey, set, timeout] of objects.affinityKeys)
    if (full || !isExisting(setKey)) plan.newSets.push([set, timeout]);
  objects.elements.forEach((element, index) => {
    const elementOwnedKey = objects.elementKeys[index]!;
    if (full || !isExisting(elementOwnedKey)) wantedElements.set(elementOwnedKey, element);
  });
}

/** Classifies an owned key that is no longer wanted. */
function planStale(plan: SyncPlan, item: string, full: boolean, stillOwned: (key: string) => boolean): void {
  const [kind, name, detail, value] = parseOwned(item);
  if (kind === OWNED_CHAIN) plan.staleChains.push(name!);
  else if (kind === OWNED_FLUSHED_CHAIN) {
    if (!stillOwned(ownedChainKey(name!))) plan.chainsToDelete.push(name!);
  } else if (kind === OWNED_SET) plan.staleSets.push(`${name}\t${detail}`);
  else if (kind === OWNED_ELEMENT && !full)
    // A full sync flushes the maps instead.
    plan.elementsToDelete.push({ map: name!, key: detail!, value: value ?? null });
}

/**
 * Renders the nft script of one family. With `scope.changedServices = 'all'` it is a full sync;
 * otherwise only element changes and the chains of changed Services are sent. `scope.existingObjects`
 * is the previous ruleset's `ownedObjects` (or {@link NftablesProxier.existingObjects} at start-up).
 * A partial sync over the previous ruleset's {@link NftOwnedObjects} costs O(changed Services)
 * beyond one walk over the port list; over anything else it diffs every owned object.
 */
export function renderNftablesRules(
  desired: DesiredState,
  node: NodeInfo,
  scope: SyncScope,
  options: NftablesRenderOptions = DEFAULT_NFTABLES_RENDER_OPTIONS,
): NftablesRuleset {
  const family = desired.family;
  const words = familyWords(family);
  const table = `${tableFamily(family)} ${TABLE_NAME}`;
  const context: RenderContext = {
    words,
    masqueradeAll: options.masqueradeAll,
    podCIDR: podCIDROf(options, family),
    nodeAddresses: node.addresses.filter((address) => ipFamilyOf(address) === family),
  };
  const key = contextKey(context);
  const full = scope.changedServices === 'all';
  const changed = scope.changedServices;
  const existing = scope.existingObjects;

  let nodePortAddresses: string[] | null = null;
  const nodeElements: Element[] = [];
  if (options.nodePortAddresses.length > 0) {
    nodePortAddresses = context.nodeAddresses.filter((address) =>
      options.nodePortAddresses.some((cidr) => cidrContains(cidr, address)),
    );
    for (const address of nodePortAddresses)
      nodeElements.push({ map: NODEPORT_IPS_SET, key: address, value: null });
  }
  const nodeKeys = nodeElements.map(elementKey);

  const plan = emptyPlan();
  const sharedChains = new Map<string, readonly string[]>();
  // By owned key: one element can be wanted twice (two ports of a Service share the cluster IP).
  const wantedElements = new Map<string, Element>();
  const isExisting = (item: string) => existing.has(item);
  let owned: NftOwnedObjects;

  if (changed !== 'all' && existing instanceof NftOwnedObjects && existing.context === key) {
    // Partial sync over our own previous state: only changed Services' keys move.
    const changes = new Map<string, number>();
    const ownerKeys = new Map<string, readonly string[]>();
    const move = (owner: string, keys: readonly string[]) => {
      const before = existing.keysOf(owner);
      if (before === keys) return;
      for (const item of before) changes.set(item, (changes.get(item) ?? 0) - 1);
      for (const item of keys) changes.set(item, (changes.get(item) ?? 0) + 1);
      ownerKeys.set(owner, keys);
    };
    const keysByService = new Map<string, string[]>();
    for (const port of desired.servicePorts) {
      if (!changed.has(port.serviceKey)) continue;
      const objects = renderServicePortCached(context, key, port);
      let keys = keysByService.get(port.serviceKey);
      if (keys === undefined) {
        keys = [];
        keysByService.set(port.serviceKey, keys);
      }
      keys.push(...objects.ownedKeys);
      planPort(plan, table, objects, false, isExisting, sharedChains, wantedElements);
    }
    for (const service of changed) move(service, keysByService.get(service) ?? []);
    move(NODE_OWNER, nodeKeys);
    for (const [index, element] of nodeElements.entries())
      if (!existing.has(nodeKeys[index]!)) wantedElements.set(nodeKeys[index]!, element);

    let size = existing.size - existing.flushed.size;
    const stale: string[] = [];
    for (const [item, change] of changes) {
      if (change === 0) {
        changes.delete(item);
        continue;
      }
      const before = existing.ownerCount(item);
      const after = before + change;
      if (before === 0 && after > 0) size++;
      else if (before > 0 && after === 0) {
        size--;
        stale.push(item);
      }
    }
    const stillOwned = (item: string) => existing.ownerCount(item) + (changes.get(item) ?? 0) > 0;
    for (const item of [...stale, ...existing.flushed]) planStale(plan, item, false, stillOwned);
    const flushed = new Set(plan.staleChains.map((chain) => ownedKey(OWNED_FLUSHED_CHAIN, chain)));
    if (existing.deep) {
      const flat = new NftOwnedObjects(key, existing, changes, ownerKeys, flushed, 0).flatten();
      owned = new NftOwnedObjects(key, null, flat.counts, flat.ownerKeys, flushed, size + flushed.size);
    } else owned = new NftOwnedObjects(key, existing, changes, ownerKeys, flushed, size + flushed.size);
  } else {
    const counts = new Map<string, number>();
    const ownerKeys = new Map<string, readonly string[]>();
    const own = (owner: string, keys: readonly string[]) => {
      const previous = ownerKeys.get(owner);
      // Most Services have one port: its key list is kept as is, not copied.
      ownerKeys.set(owner, previous === undefined ? keys : [...previous, ...keys]);
      for (const item of keys) counts.set(item, (counts.get(item) ?? 0) + 1);
    };
    for (const port of desired.servicePorts) {
      const objects = renderServicePortCached(context, key, port);
      own(port.serviceKey, objects.ownedKeys);
      if (changed !== 'all' && !changed.has(port.serviceKey)) continue;
      // Elements and sets of unchanged Services are unchanged too: only changed ones are diffed.
      planPort(plan, table, objects, full, isExisting, sharedChains, wantedElements);
    }
    own(NODE_OWNER, nodeKeys);
    for (const [index, element] of nodeElements.entries())
      if (full || !existing.has(nodeKeys[index]!)) wantedElements.set(nodeKeys[index]!, element);
    const stillOwned = (item: string) => counts.has(item);
    for (const item of existing) if (!counts.has(item)) planStale(plan, item, full, stillOwned);
    const flushed = new Set(
      [...plan.staleChains].sort().map((chain) => ownedKey(OWNED_FLUSHED_CHAIN, chain)),
    );
    owned = new NftOwnedObjects(key, null, counts, ownerKeys, flushed, counts.size + flushed.size);
  }

  for (const [chain, rules] of [...sharedChains].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    plan.chainStatements.push(`add chain ${table} ${chain}`);
    plan.flushStatements.push(`flush chain ${table} ${chain}`);
    for (const rule of rules) plan.ruleStatements.push(`add rule ${table} ${chain} ${rule}`);
  }
  for (const element of wantedElements.values()) plan.elementsToAdd.push(element);
  const byKey = (a: Element, b: Element) => {
    const left = elementKey(a);
    const right = elementKey(b);
    return left < right ? -1 : left > right ? 1 : 0;
  };
  plan.elementsToDelete.sort(byKey);
  plan.staleChains.sort();
  plan.chainsToDelete.sort();
  plan.staleSets.sort();

  const out: string[] = [];
  if (full) renderStatic(out, table, words, options, nodePortAddresses);
  const setStatement = (set: string, timeout: number | string) =>
    `add set ${table} ${set} { type ${words.addressType} ; flags dynamic,timeout ; timeout ${timeout}s ; }`;
  for (const chain of plan.chainStatements) out.push(chain);
  for (const chain of plan.staleChains) out.push(`add chain ${table} ${chain}`);
  for (const flush of plan.flushStatements) out.push(flush);
  for (const chain of plan.staleChains) out.push(`flush chain ${table} ${chain}`);
  for (const statement of elementStatements('delete', table, plan.elementsToDelete)) out.push(statement);
  // add-then-delete succeeds whether or not the object is still there (someone may have removed it).
  for (const chain of plan.chainsToDelete)
    out.push(`add chain ${table} ${chain}`, `delete chain ${table} ${chain}`);
  for (const set of plan.staleSets) {
    const [name, timeout] = set.split('\t');
    out.push(setStatement(name!, timeout!), `delete set ${table} ${name}`);
  }
  for (const [set, timeout] of plan.newSets) out.push(setStatement(set, timeout));
  for (const rule of plan.ruleStatements) out.push(rule);
  for (const statement of elementStatements('add', table, plan.elementsToAdd)) out.push(statement);

  return {
    mode: 'nftables',
    family,
    full,
    ownedObjects: owned,
    script: out.length === 0 ? '' : `${out.join('\n')}\n`,
    statementCount: out.length,
  };
}
