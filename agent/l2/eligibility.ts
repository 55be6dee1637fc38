/**
 * Which nodes may announce a LoadBalancer IP at layer 2, and in which order they contend for it.
 * Pure functions over the objects the agent's informers hold.
 *
 * The unit of announcement is the IP, not the Service: Services sharing an IP (the
 * `portico.dev/allow-shared-ip` key) must be announced by one node, or two nodes would answer ARP
 * for the same address. So the lease, the eligibility and the preference order are all per IP.
 */
import { createHash } from 'node:crypto';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { DEFAULT_LOAD_BALANCER_CLASS } from '../../api/labels.ts';

/** Nodes carrying this label never announce LoadBalancer IPs (upstream's well-known label). */
export const EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS_LABEL =
  'node.kubernetes.io/exclude-from-external-load-balancers';

/** The label EndpointSlices carry naming their Service. */
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** One LoadBalancer IP and the nodes that may announce it, best candidate first. */
export interface IpAnnouncement {
  /** The IP as written in `status.loadBalancer.ingress[].ip`. */
  readonly ip: string;
  /** `namespace/name` of every Service using the IP, sorted. */
  readonly services: readonly string[];
  /** Eligible nodes in preference order: index 0 contends first. Empty: nobody may announce. */
  readonly candidates: readonly string[];
}

/** True when the node's Ready condition is True. */
export function isNodeReady(node: V1Node): boolean {
  return (node.status?.conditions ?? []).some(
    (condition) => condition.type === 'Ready' && condition.status === 'True',
  );
}

/**
 * Whether the L2 announcer handles this Service: type LoadBalancer, our class (or none, when we
 * are the default implementation, i.e. `loadBalancerClass` is Portico's default class), and IPs
 * in ipMode VIP (ipMode Proxy means something in front of the nodes receives the traffic).
 */
export function announcedIps(service: V1Service, loadBalancerClass = DEFAULT_LOAD_BALANCER_CLASS): string[] {
  if (service.spec?.type !== 'LoadBalancer') return [];
  const serviceClass = service.spec.loadBalancerClass;
  if (serviceClass !== undefined && serviceClass !== loadBalancerClass) return [];
  const ips = new Set<string>();
  for (const ingress of service.status?.loadBalancer?.ingress ?? []) {
    if (ingress.ip !== undefined && ingress.ip !== '' && (ingress.ipMode ?? 'VIP') === 'VIP')
      ips.add(ingress.ip);
  }
  return [...ips];
}

/**
 * Nodes with at least one ready endpoint of the Service, from its EndpointSlices. A missing
 * `ready` condition counts as ready, as the EndpointSlice API defines it.
 */
export function nodesWithReadyEndpoints(slices: readonly V1EndpointSlice[]): Set<string> {
  const nodes = new Set<string>();
  for (const slice of slices) {
    for (const endpoint of slice.endpoints ?? []) {
      if (endpoint.nodeName !== undefined && endpoint.conditions?.ready !== false)
        nodes.add(endpoint.nodeName);
    }
  }
  return nodes;
}

/**
 * The nodes that may announce one Service's IPs: ready nodes not labelled
 * {@link EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS_LABEL}; with `externalTrafficPolicy: Local` only
 * those among them with a ready local endpoint, because the proxier drops external traffic on a
 * node without one (announcing from there would black-hole the IP).
 */
export function eligibleNodesForService(
  service: V1Service,
  slices: readonly V1EndpointSlice[],
  nodes: readonly V1Node[],
): Set<string> {
  const usable = nodes.filter(
    (node) =>
      node.metadata?.name !== undefined &&
      isNodeReady(node) &&
      node.metadata.labels?.[EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS_LABEL] === undefined,
  );
  const names = new Set(usable.map((node) => node.metadata!.name!));
  if (service.spec?.externalTrafficPolicy !== 'Local') return names;
  const withEndpoints = nodesWithReadyEndpoints(slices);
  return new Set([...names].filter((name) => withEndpoints.has(name)));
}

/**
 * The score that orders candidates for an IP: a hash of node name and IP, as MetalLB does, so
 * each IP gets an independent, deterministic order and first choices spread evenly over nodes.
 */
export function preferenceScore(nodeName: string, ip: string): string {
  return createHash('sha256').update(`${nodeName}#${ip}`).digest('hex');
}

/** `nodes` sorted by {@link preferenceScore} for `ip` (ties cannot happen for distinct names). */
export function preferenceOrder(nodes: Iterable<string>, ip: string): string[] {
  return [...nodes]
    .map((name) => ({ name, score: preferenceScore(name, ip) }))
    .sort((a, b) => (a.score < b.score ? -1 : a.score > b.score ? 1 : 0))
    .map((entry) => entry.name);
}

/**
 * Every announced IP with its Services and candidates. A node is a candidate for a shared IP only
 * when it is eligible for every Service on it: the announcing node receives the traffic of all of
 * them, and the allocator only lets Services with compatible traffic policies share an IP.
 */
export function planAnnouncements(
  services: readonly V1Service[],
  slices: readonly V1EndpointSlice[],
  nodes: readonly V1Node[],
  loadBalancerClass = DEFAULT_LOAD_BALANCER_CLASS,
): IpAnnouncement[] {
  const slicesByService = new Map<string, V1EndpointSlice[]>();
  for (const slice of slices) {
    const serviceName = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (serviceName === undefined) continue;
    const key = `${slice.metadata?.namespace ?? ''}/${serviceName}`;
    const list = slicesByService.get(key) ?? [];
    list.push(slice);
    slicesByService.set(key, list);
  }
  const byIp = new Map<string, { services: string[]; eligible: Set<string> }>();
  for (const service of services) {
    const ips = announcedIps(service, loadBalancerClass);
    if (ips.length === 0) continue;
    const key = `${service.metadata?.namespace ?? ''}/${service.metadata?.name ?? ''}`;
    const eligible = eligibleNodesForService(service, slicesByService.get(key) ?? [], nodes);
    for (const ip of ips) {
      const entry = byIp.get(ip);
      if (entry === undefined) {
        byIp.set(ip, { services: [key], eligible: new Set(eligible) });
      } else {
        entry.services.push(key);
        entry.eligible = new Set([...entry.eligible].filter((name) => eligible.has(name)));
      }
    }
  }
  return [...byIp.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([ip, entry]) => ({
      ip,
      services: entry.services.sort(),
      candidates: preferenceOrder(entry.eligible, ip),
    }));
}

/** The Lease name for an IP: `portico-l2-` and a hash, since IPv6 text is not a valid name. */
export function l2LeaseName(ip: string): string {
  return `portico-l2-${createHash('sha256').update(ip).digest('hex').slice(0, 16)}`;
}
