/**
 * Rendering of the IPVS mode (upstream: pkg/proxy/ipvs/proxier.go): the addresses of the dummy
 * interface, the IPVS virtual and real servers as `ipvsadm --restore` input, the ipsets as
 * `ipset restore` input, and the few iptables rules IPVS still needs (masquerade, node ports,
 * source ranges, reject of unknown ports), all computed from the desired state.
 *
 * IPVS has no transaction, so the IPVS part is a diff against the servers in the kernel, with
 * graceful termination ({@link ./graceful.ts}) for real servers that leave. The ipsets are
 * swapped in whole (build a temporary set, `swap`, destroy), which is atomic per set, and the
 * iptables rules only reference sets, so they stay the same size whatever the number of Services.
 */
import type { JumpRule } from '../iptables/render.ts';
import { type CommonRenderOptions, masqueradeMark, podCIDROf } from '../render-common.ts';
import { cidrContains, ipFamilyOf, joinHostPort } from '../state/ip.ts';
import { ANNOTATION_IPVS_SCHEDULER } from '../state/service.ts';
import type {
  DesiredState,
  EndpointState,
  IPFamily,
  NodeInfo,
  ServicePortState,
  ServiceProtocol,
} from '../state/types.ts';
import { type ConnectionCounts, planRealServers } from './graceful.ts';

/** Name of the dummy interface that holds every service address, so the kernel accepts them as local. */
export const DUMMY_INTERFACE = 'portico-ipvs0';

/** IPVS schedulers Portico supports. */
export const IPVS_SCHEDULERS = ['dh', 'lc', 'nq', 'rr', 'sed', 'sh'] as const;

/** One of {@link IPVS_SCHEDULERS}. */
export type IpvsScheduler = (typeof IPVS_SCHEDULERS)[number];

/** True for the names in {@link IPVS_SCHEDULERS}. */
export function isIpvsScheduler(value: string): value is IpvsScheduler {
  return (IPVS_SCHEDULERS as readonly string[]).includes(value);
}

/**
 * The scheduler of a Service port from its `portico.dev/ipvs-scheduler` annotation
 * (`ServicePortState.ipvsScheduler`), or the `--ipvs-scheduler` default when it is absent. An
 * unsupported value yields the default and an error phrased as the API server phrases one: a
 * typo in one Service must not stop the node's sync, so it is logged instead of thrown.
 */
export function ipvsSchedulerFor(
  annotation: string,
  defaultScheduler: IpvsScheduler,
): { readonly scheduler: IpvsScheduler; readonly error: string | null } {
  if (annotation === '') return { scheduler: defaultScheduler, error: null };
  if (isIpvsScheduler(annotation)) return { scheduler: annotation, error: null };
  const supported = IPVS_SCHEDULERS.map((name) => `"${name}"`).join(', ');
  return {
    scheduler: defaultScheduler,
    error: `metadata.annotations[${ANNOTATION_IPVS_SCHEDULER}]: Unsupported value: "${annotation}": supported values: ${supported}`,
  };
}

/** Settings of the IPVS proxier (the agent's flags). */
export interface IpvsRenderOptions extends CommonRenderOptions {
  /** `--ipvs-scheduler`: scheduler of Services without the annotation (or with an unsupported one). */
  readonly defaultScheduler: IpvsScheduler;
}

/** Upstream's defaults. */
export const DEFAULT_IPVS_RENDER_OPTIONS: IpvsRenderOptions = {
  defaultScheduler: 'rr',
  clusterCIDRs: [],
  masqueradeAll: false,
  masqueradeBit: 14,
  nodePortAddresses: [],
};

/** One IPVS virtual server and the real servers it should have. */
export interface VirtualServer {
  readonly protocol: ServiceProtocol;
  readonly address: string;
  readonly port: number;
  readonly scheduler: IpvsScheduler;
  /** ClientIP affinity: persistence timeout in seconds, or null. */
  readonly persistenceSeconds: number | null;
  /** `ip:port` of each real server, sorted. */
  readonly realServers: readonly string[];
}

/** `tcp:10.96.0.10:80`: the identity of a virtual server. */
export function virtualServerKey(server: Pick<VirtualServer, 'protocol' | 'address' | 'port'>): string {
  return `${server.protocol.toLowerCase()}:${joinHostPort(server.address, server.port)}`;
}

function protocolFlag(protocol: ServiceProtocol): string {
  return protocol === 'TCP' ? '-t' : protocol === 'UDP' ? '-u' : '--sctp-service';
}

function endpointsFor(port: ServicePortState, local: boolean): readonly EndpointState[] {
  return local ? port.localEndpoints : port.clusterEndpoints;
}

/** Virtual servers of the desired state, sorted by key. */
export function desiredVirtualServers(
  desired: DesiredState,
  node: NodeInfo,
  options: IpvsRenderOptions,
): VirtualServer[] {
  const nodeAddresses = node.addresses.filter(
    (address) =>
      ipFamilyOf(address) === desired.family &&
      (options.nodePortAddresses.length === 0 ||
        options.nodePortAddresses.some((cidr) => cidrContains(cidr, address))),
  );
  const servers: VirtualServer[] = [];
  for (const port of desired.servicePorts) {
    const base = {
      protocol: port.protocol,
      scheduler: ipvsSchedulerFor(port.ipvsScheduler, options.defaultScheduler).scheduler,
      persistenceSeconds: port.affinityTimeoutSeconds,
    };
    const realServers = (local: boolean) =>
      endpointsFor(port, local)
        .map((endpoint) => endpoint.hostPort)
        .sort();
    servers.push({
      ...base,
      address: port.clusterIP,
      port: port.port,
      realServers: realServers(port.internalPolicyLocal),
    });
    const external = realServers(port.externalPolicyLocal);
    for (const address of [...port.externalIPs, ...port.loadBalancerIPs])
      servers.push({ ...base, address, port: port.port, realServers: external });
    if (port.nodePort !== 0)
      for (const address of nodeAddresses)
        servers.push({ ...base, address, port: port.nodePort, realServers: external });
  }
  return servers.sort((a, b) => (virtualServerKey(a) < virtualServerKey(b) ? -1 : 1));
}

/** A virtual server as it is in the kernel. */
export interface KernelVirtualServer {
  readonly protocol: ServiceProtocol;
  readonly address: string;
  readonly port: number;
  readonly scheduler: string;
  readonly persistenceSeconds: number | null;
  /** Real servers with their weight. */
  readonly realServers: ReadonlyMap<string, number>;
}

/** Inputs of {@link planIpvs} beyond the desired servers. */
export interface IpvsKernelView {
  /** Virtual servers in the kernel, by {@link virtualServerKey}. */
  readonly current: ReadonlyMap<string, KernelVirtualServer>;
  /** Draining real servers per virtual server key, with the time draining began. */
  readonly draining: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Connection counts by virtual server key, then real server. */
  readonly connections: ReadonlyMap<string, ReadonlyMap<string, ConnectionCounts>>;
  readonly now: number;
  readonly drainTimeoutMs: number;
}

/** `ipvsadm --restore` input and the state after it. */
export interface IpvsPlan {
  readonly commands: readonly string[];
  readonly draining: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

/** A virtual server as `ipvsadm` arguments name it: `-t 10.0.0.1:80`, `-u [fd00::1]:53`. */
export function serviceSpec(server: Pick<VirtualServer, 'protocol' | 'address' | 'port'>): string {
  return `${protocolFlag(server.protocol)} ${joinHostPort(server.address, server.port)}`;
}

function serviceOptions(server: { scheduler: string; persistenceSeconds: number | null }): string {
  return server.persistenceSeconds === null
    ? `-s ${server.scheduler}`
    : `-s ${server.scheduler} -p ${server.persistenceSeconds}`;
}

/**
 * The `ipvsadm` commands that take the kernel from `view.current` to `desired`: add or edit
 * virtual servers (scheduler, persistence), add real servers, drain (weight 0) and later delete
 * the ones that left, and delete virtual servers no Service has any more.
 */
export function planIpvs(desired: readonly VirtualServer[], view: IpvsKernelView): IpvsPlan {
  const commands: string[] = [];
  const draining = new Map<string, ReadonlyMap<string, number>>();
  const wanted = new Set<string>();
  for (const server of desired) {
    const key = virtualServerKey(server);
    wanted.add(key);
    const current = view.current.get(key);
    const spec = serviceSpec(server);
    if (current === undefined) commands.push(`-A ${spec} ${serviceOptions(server)}`);
    else if (
      current.scheduler !== server.scheduler ||
      current.persistenceSeconds !== server.persistenceSeconds
    )
      commands.push(`-E ${spec} ${serviceOptions(server)}`);
    const plan = planRealServers({
      protocol: server.protocol,
      current: current?.realServers ?? new Map(),
      desired: new Set(server.realServers),
      draining: view.draining.get(key) ?? new Map(),
      now: view.now,
      connections: view.connections.get(key) ?? new Map(),
      drainTimeoutMs: view.drainTimeoutMs,
    });
    for (const operation of plan.operations) {
      const real = `-r ${operation.realServer}`;
      if (operation.kind === 'add') commands.push(`-a ${spec} ${real} -m -w 1`);
      else if (operation.kind === 'restore-weight') commands.push(`-e ${spec} ${real} -m -w 1`);
      else if (operation.kind === 'drain') commands.push(`-e ${spec} ${real} -m -w 0`);
      else commands.push(`-d ${spec} ${real}`);
    }
    if (plan.draining.size > 0) draining.set(key, plan.draining);
  }
  // A virtual server whose Service is gone takes its real servers with it: no new connection can
  // reach the address any more, so there is nothing to drain towards.
  for (const [key, server] of [...view.current].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
    if (!wanted.has(key)) commands.push(`-D ${serviceSpec(server)}`);
  return { commands, draining };
}

/** An ipset Portico keeps in IPVS mode. */
export interface IpsetSpec {
  readonly name: string;
  readonly type: string;
  readonly comment: string;
}

/** Set names; IPv6 sets get `PORTICO-6-` (ipset names are per network namespace, not per family, and at most 31 characters). */
export function ipsetNames(family: IPFamily) {
  const prefix = family === 'IPv4' ? 'PORTICO-' : 'PORTICO-6-';
  return {
    loopBack: `${prefix}LOOP-BACK`,
    clusterIP: `${prefix}CLUSTER-IP`,
    externalIP: `${prefix}EXTERNAL-IP`,
    externalIPLocal: `${prefix}EXTERNAL-IP-LOCAL`,
    loadBalancer: `${prefix}LB`,
    loadBalancerLocal: `${prefix}LB-LOCAL`,
    loadBalancerFirewall: `${prefix}LB-FW`,
    loadBalancerSourceIP: `${prefix}LB-SOURCE-IP`,
    loadBalancerSourceCIDR: `${prefix}LB-SOURCE-CIDR`,
    nodePortTCP: `${prefix}NODE-PORT-TCP`,
    nodePortLocalTCP: `${prefix}NODE-PORT-LOCAL-TCP`,
    nodePortUDP: `${prefix}NODE-PORT-UDP`,
    nodePortLocalUDP: `${prefix}NODE-PORT-LOCAL-UDP`,
    nodePortSCTP: `${prefix}NODE-PORT-SCTP`,
    nodePortLocalSCTP: `${prefix}NODE-PORT-LOCAL-SCTP`,
    healthCheckNodePort: `${prefix}HEALTH-CHECK-NP`,
    ipvsIPs: `${prefix}IPVS-IPS`,
  } as const;
}

type IpsetKey = keyof ReturnType<typeof ipsetNames>;

const IPSET_TYPES: Record<IpsetKey, [type: string, comment: string]> = {
  loopBack: ['hash:ip,port,ip', 'endpoint ip:port and source ip, for hairpin masquerade'],
  clusterIP: ['hash:ip,port', 'cluster IP:port of every Service'],
  externalIP: ['hash:ip,port', 'external IP:port of every Service'],
  externalIPLocal: ['hash:ip,port', 'external IP:port with externalTrafficPolicy Local'],
  loadBalancer: ['hash:ip,port', 'load balancer IP:port of every Service'],
  loadBalancerLocal: ['hash:ip,port', 'load balancer IP:port with externalTrafficPolicy Local'],
  loadBalancerFirewall: ['hash:ip,port', 'load balancer IP:port with source ranges'],
  loadBalancerSourceIP: ['hash:ip,port,ip', 'load balancer IP:port and a load balancer IP allowed as source'],
  loadBalancerSourceCIDR: ['hash:ip,port,net', 'load balancer IP:port and an allowed source range'],
  nodePortTCP: ['bitmap:port range 0-65535', 'TCP node ports'],
  nodePortLocalTCP: ['bitmap:port range 0-65535', 'TCP node ports with externalTrafficPolicy Local'],
  nodePortUDP: ['bitmap:port range 0-65535', 'UDP node ports'],
  nodePortLocalUDP: ['bitmap:port range 0-65535', 'UDP node ports with externalTrafficPolicy Local'],
  nodePortSCTP: ['hash:ip,port', 'SCTP node address:port'],
  nodePortLocalSCTP: ['hash:ip,port', 'SCTP node address:port with externalTrafficPolicy Local'],
  healthCheckNodePort: ['bitmap:port range 0-65535', 'health check node ports'],
  ipvsIPs: ['hash:ip', `every address on ${DUMMY_INTERFACE}`],
};

/** Output of {@link renderIpvsRules}. */
export interface IpvsRuleset {
  readonly family: IPFamily;
  /** Addresses (`/32` or `/128`) the dummy interface must hold, sorted. */
  readonly dummyAddresses: readonly string[];
  readonly virtualServers: readonly VirtualServer[];
  /** `ipset restore` input. */
  readonly ipsetRestore: string;
  /** `iptables-restore --noflush` input (filter and nat). */
  readonly iptablesRestore: string;
  /** Jumps from the built-in chains into ours. */
  readonly jumps: readonly JumpRule[];
  /** The ipsets, for cleanup. */
  readonly ipsets: readonly IpsetSpec[];
  /** Services (`namespace/name`) whose scheduler annotation is unsupported, with the error; they got the default. */
  readonly schedulerErrors: ReadonlyMap<string, string>;
}

/** nat and filter chains of IPVS mode. */
export const IPVS_CHAINS = {
  nat: [
    'PORTICO-SERVICES',
    'PORTICO-POSTROUTING',
    'PORTICO-NODE-PORT',
    'PORTICO-LOAD-BALANCER',
    'PORTICO-MARK-MASQ',
  ],
  filter: [
    'PORTICO-FORWARD',
    'PORTICO-NODE-PORT',
    'PORTICO-PROXY-FIREWALL',
    'PORTICO-SOURCE-RANGES-FW',
    'PORTICO-IPVS-FILTER',
  ],
} as const;

function jump(table: JumpRule['table'], chain: JumpRule['chain'], target: string, comment: string): JumpRule {
  return { table, chain, args: ['-m', 'comment', '--comment', comment, '-j', target] };
}

/** The jumps IPVS mode installs. */
export const IPVS_JUMP_RULES: readonly JumpRule[] = [
  jump('nat', 'PREROUTING', 'PORTICO-SERVICES', 'portico service portals'),
  jump('nat', 'OUTPUT', 'PORTICO-SERVICES', 'portico service portals'),
  jump('nat', 'POSTROUTING', 'PORTICO-POSTROUTING', 'portico postrouting rules'),
  jump('filter', 'FORWARD', 'PORTICO-FORWARD', 'portico forwarding rules'),
  jump('filter', 'INPUT', 'PORTICO-NODE-PORT', 'portico health check rules'),
  jump('filter', 'INPUT', 'PORTICO-PROXY-FIREWALL', 'portico load balancer firewall'),
  jump('filter', 'FORWARD', 'PORTICO-PROXY-FIREWALL', 'portico load balancer firewall'),
  jump('filter', 'INPUT', 'PORTICO-IPVS-FILTER', 'portico ipvs access filter'),
];

/** Renders the ipsets, dummy addresses, virtual servers and iptables rules of one family. */
export function renderIpvsRules(
  desired: DesiredState,
  node: NodeInfo,
  options: IpvsRenderOptions = DEFAULT_IPVS_RENDER_OPTIONS,
): IpvsRuleset {
  const family = desired.family;
  const names = ipsetNames(family);
  const entries = new Map<IpsetKey, Set<string>>();
  const add = (set: IpsetKey, entry: string) => {
    let list = entries.get(set);
    if (list === undefined) {
      list = new Set();
      entries.set(set, list);
    }
    list.add(entry);
  };
  const dummy = new Set<string>();
  const nodeAddresses = node.addresses.filter((address) => ipFamilyOf(address) === family);
  const schedulerErrors = new Map<string, string>();
  for (const port of desired.servicePorts) {
    const { error } = ipvsSchedulerFor(port.ipvsScheduler, options.defaultScheduler);
    if (error !== null) schedulerErrors.set(port.serviceKey, error);
    const protocol = port.protocol.toLowerCase();
    const ipPort = (address: string) => `${address},${protocol}:${port.port}`;
    dummy.add(port.clusterIP);
    add('clusterIP', ipPort(port.clusterIP));
    add('ipvsIPs', port.clusterIP);
    for (const endpoint of port.endpoints)
      add('loopBack', `${endpoint.ip},${protocol}:${endpoint.port},${endpoint.ip}`);
    for (const address of port.externalIPs) {
      dummy.add(address);
      add('ipvsIPs', address);
      add('externalIP', ipPort(address));
      if (port.externalPolicyLocal) add('externalIPLocal', ipPort(address));
    }
    for (const address of port.loadBalancerIPs) {
      dummy.add(address);
      add('ipvsIPs', address);
      add('loadBalancer', ipPort(address));
      if (port.externalPolicyLocal) add('loadBalancerLocal', ipPort(address));
      if (port.loadBalancerSourceRanges.length > 0) {
        add('loadBalancerFirewall', ipPort(address));
        for (const range of port.loadBalancerSourceRanges)
          add('loadBalancerSourceCIDR', `${ipPort(address)},${range}`);
        // A VIP bound on this node loops the node's own request back with the VIP as source.
        if (port.loadBalancerSourceRanges.some((range) => nodeAddresses.some((a) => cidrContains(range, a))))
          add('loadBalancerSourceIP', `${ipPort(address)},${address}`);
      }
    }
    if (port.nodePort !== 0) {
      if (port.protocol === 'SCTP') {
        for (const address of nodeAddresses) {
          add('nodePortSCTP', `${address},sctp:${port.nodePort}`);
          if (port.externalPolicyLocal) add('nodePortLocalSCTP', `${address},sctp:${port.nodePort}`);
        }
      } else {
        const upper = port.protocol === 'TCP' ? 'TCP' : 'UDP';
        add(`nodePort${upper}`, String(port.nodePort));
        if (port.externalPolicyLocal) add(`nodePortLocal${upper}`, String(port.nodePort));
      }
    }
    if (port.healthCheckNodePort !== 0) add('healthCheckNodePort', String(port.healthCheckNodePort));
  }

  const ipsetFamily = family === 'IPv4' ? 'inet' : 'inet6';
  const ipsets: IpsetSpec[] = [];
  const restore: string[] = [];
  for (const key of Object.keys(IPSET_TYPES) as IpsetKey[]) {
    const [type, comment] = IPSET_TYPES[key];
    const name = names[key];
    ipsets.push({ name, type, comment });
    const create = type.startsWith('bitmap:') ? `${type}` : `${type} family ${ipsetFamily}`;
    // Fill a temporary set and swap it in: each set changes atomically, never empty in between.
    const temporary = `${name}-T`;
    restore.push(`create ${name} ${create} comment -exist`);
    restore.push(`create ${temporary} ${create} comment -exist`, `flush ${temporary}`);
    for (const entry of [...(entries.get(key) ?? [])].sort())
      restore.push(`add ${temporary} ${entry} comment "${comment}"`);
    restore.push(`swap ${temporary} ${name}`, `destroy ${temporary}`);
  }

  const mark = masqueradeMark(options);
  const podCIDR = podCIDROf(options, family);
  const set = (key: IpsetKey, flags: string) => `-m set --match-set ${names[key]} ${flags}`;
  const clusterMasquerade = options.masqueradeAll ? '' : podCIDR === null ? null : `! -s ${podCIDR} `;
  const nat = [
    '*nat',
    ...IPVS_CHAINS.nat.map((chain) => `:${chain} - [0:0]`),
    `-A PORTICO-POSTROUTING -m comment --comment "portico endpoint hairpin" ${set('loopBack', 'dst,dst,src')} -j MASQUERADE`,
    `-A PORTICO-POSTROUTING -m mark ! --mark ${mark}/${mark} -j RETURN`,
    `-A PORTICO-POSTROUTING -j MARK --xor-mark ${mark}`,
    '-A PORTICO-POSTROUTING -m comment --comment "portico service traffic requiring SNAT" -j MASQUERADE --random-fully',
    `-A PORTICO-MARK-MASQ -j MARK --or-mark ${mark}`,
    `-A PORTICO-SERVICES ${set('loadBalancer', 'dst,dst')} -j PORTICO-LOAD-BALANCER`,
    ...(clusterMasquerade === null
      ? []
      : [`-A PORTICO-SERVICES ${clusterMasquerade}${set('clusterIP', 'dst,dst')} -j PORTICO-MARK-MASQ`]),
    // Local-policy external IPs keep the client's source; the RETURN must come before the general rule.
    `-A PORTICO-SERVICES ${set('externalIPLocal', 'dst,dst')} -j RETURN`,
    `-A PORTICO-SERVICES ${set('externalIP', 'dst,dst')} -j PORTICO-MARK-MASQ`,
    '-A PORTICO-SERVICES -m addrtype --dst-type LOCAL -j PORTICO-NODE-PORT',
    `-A PORTICO-LOAD-BALANCER ${set('loadBalancerLocal', 'dst,dst')} -j RETURN`,
    '-A PORTICO-LOAD-BALANCER -j PORTICO-MARK-MASQ',
    `-A PORTICO-NODE-PORT -p tcp ${set('nodePortLocalTCP', 'dst')} -j RETURN`,
    `-A PORTICO-NODE-PORT -p tcp ${set('nodePortTCP', 'dst')} -j PORTICO-MARK-MASQ`,
    `-A PORTICO-NODE-PORT -p udp ${set('nodePortLocalUDP', 'dst')} -j RETURN`,
    `-A PORTICO-NODE-PORT -p udp ${set('nodePortUDP', 'dst')} -j PORTICO-MARK-MASQ`,
    `-A PORTICO-NODE-PORT -p sctp ${set('nodePortLocalSCTP', 'dst,dst')} -j RETURN`,
    `-A PORTICO-NODE-PORT -p sctp ${set('nodePortSCTP', 'dst,dst')} -j PORTICO-MARK-MASQ`,
    'COMMIT',
  ];
  const filter = [
    '*filter',
    ...IPVS_CHAINS.filter.map((chain) => `:${chain} - [0:0]`),
    `-A PORTICO-FORWARD -m comment --comment "portico forwarding rules" -m mark --mark ${mark}/${mark} -j ACCEPT`,
    '-A PORTICO-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    `-A PORTICO-NODE-PORT ${set('healthCheckNodePort', 'dst')} -j ACCEPT`,
    `-A PORTICO-PROXY-FIREWALL ${set('loadBalancerFirewall', 'dst,dst')} -j PORTICO-SOURCE-RANGES-FW`,
    `-A PORTICO-SOURCE-RANGES-FW ${set('loadBalancerSourceCIDR', 'dst,dst,src')} -j RETURN`,
    `-A PORTICO-SOURCE-RANGES-FW ${set('loadBalancerSourceIP', 'dst,dst,src')} -j RETURN`,
    '-A PORTICO-SOURCE-RANGES-FW -j DROP',
    `-A PORTICO-IPVS-FILTER ${set('loadBalancer', 'dst,dst')} -j RETURN`,
    `-A PORTICO-IPVS-FILTER ${set('clusterIP', 'dst,dst')} -j RETURN`,
    `-A PORTICO-IPVS-FILTER ${set('externalIP', 'dst,dst')} -j RETURN`,
    `-A PORTICO-IPVS-FILTER ${set('healthCheckNodePort', 'dst')} -j RETURN`,
    // Without this, every port of a service address would reach host processes through the dummy interface.
    `-A PORTICO-IPVS-FILTER -m conntrack --ctstate NEW ${set('ipvsIPs', 'dst')} -j REJECT`,
    'COMMIT',
  ];
  const hostBits = family === 'IPv4' ? 32 : 128;
  return {
    family,
    dummyAddresses: [...dummy].sort().map((address) => `${address}/${hostBits}`),
    virtualServers: desiredVirtualServers(desired, node, options),
    ipsetRestore: `${restore.join('\n')}\n`,
    iptablesRestore: `${filter.join('\n')}\n${nat.join('\n')}\n`,
    jumps: IPVS_JUMP_RULES,
    ipsets,
    schedulerErrors,
  };
}

/** `ipset restore` input that destroys every Portico set (after the iptables rules using them are gone). */
export function ipsetCleanup(ipsets: readonly IpsetSpec[]): string {
  return ipsets.map((spec) => `destroy ${spec.name}`).join('\n') + '\n';
}
