/**
 * EndpointSlices → endpoints of one Service port, and the split into the endpoints that
 * Cluster-policy and Local-policy traffic may use (upstream's endpointslicecache and
 * pkg/proxy/topology.go `CategorizeEndpoints`).
 */
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { joinHostPort } from './ip.ts';
import type { ServicePortSpec } from './service.ts';
import type { EndpointState, IPFamily, NodeInfo, ServiceProtocol } from './types.ts';

function sortedNames(list: readonly { name: string }[] | undefined): string[] {
  return (list ?? []).map((item) => item.name).sort();
}

/**
 * The endpoints of the Service port `portName`/`protocol` across all slices of one family,
 * deduplicated by `ip:port` (an endpoint listed by two slices, as happens while the controller
 * moves it, keeps its ready copy) and sorted by `ip:port` so rendering is deterministic.
 */
export function endpointsForPort(
  slices: Iterable<V1EndpointSlice>,
  family: IPFamily,
  portName: string,
  protocol: ServiceProtocol,
  nodeName: string,
): EndpointState[] {
  const byHostPort = new Map<string, EndpointState>();
  for (const slice of slices) {
    if (slice.addressType !== family) continue;
    const slicePort = (slice.ports ?? []).find(
      (port) => (port.name ?? '') === portName && (port.protocol ?? 'TCP') === protocol,
    );
    if (slicePort?.port === undefined) continue;
    for (const endpoint of slice.endpoints ?? []) {
      const ip = endpoint.addresses[0];
      if (ip === undefined) continue;
      const ready = endpoint.conditions?.ready ?? true;
      const hostPort = joinHostPort(ip, slicePort.port);
      if (byHostPort.get(hostPort)?.ready === true) continue;
      byHostPort.set(hostPort, {
        ip,
        port: slicePort.port,
        hostPort,
        ready,
        serving: endpoint.conditions?.serving ?? ready,
        terminating: endpoint.conditions?.terminating ?? false,
        isLocal: endpoint.nodeName !== undefined && endpoint.nodeName === nodeName,
        zoneHints: sortedNames(endpoint.hints?.forZones),
        nodeHints: sortedNames(endpoint.hints?.forNodes),
      });
    }
  }
  return [...byHostPort.values()].sort((a, b) =>
    a.hostPort < b.hostPort ? -1 : a.hostPort > b.hostPort ? 1 : 0,
  );
}

type TopologyFilter = 'node' | 'zone' | 'none';

/**
 * Hints are all-or-nothing: they are used only when every ready endpoint carries them and at least
 * one names this node (or zone); otherwise a half-hinted slice during a rollout would pin traffic
 * to a few endpoints. Node hints win over zone hints (PreferSameNode).
 */
function topologyFilter(endpoints: readonly EndpointState[], node: NodeInfo): TopologyFilter {
  const ready = endpoints.filter((endpoint) => endpoint.ready);
  if (ready.length === 0) return 'none';
  if (
    ready.every((endpoint) => endpoint.nodeHints.length > 0) &&
    ready.some((endpoint) => endpoint.nodeHints.includes(node.name))
  )
    return 'node';
  if (
    node.zone !== '' &&
    ready.every((endpoint) => endpoint.zoneHints.length > 0) &&
    ready.some((endpoint) => endpoint.zoneHints.includes(node.zone))
  )
    return 'zone';
  return 'none';
}

function servingTerminating(endpoint: EndpointState): boolean {
  return endpoint.serving && endpoint.terminating;
}

/** The result of {@link categorizeEndpoints}. */
export interface CategorizedEndpoints {
  readonly clusterEndpoints: EndpointState[];
  readonly localEndpoints: EndpointState[];
  readonly hasEndpoints: boolean;
}

/**
 * Splits endpoints for the two traffic policies. Cluster endpoints are the ready ones (narrowed by
 * topology hints), or, when none is ready anywhere, the serving-terminating ones; Local endpoints
 * are the ready ones on this node, or the node's serving-terminating ones. The fallback is applied
 * to each set separately, so a node whose last local pod is terminating keeps answering on its
 * node port while the external balancer drains it.
 */
export function categorizeEndpoints(
  spec: ServicePortSpec,
  endpoints: readonly EndpointState[],
  node: NodeInfo,
): CategorizedEndpoints {
  const accessibleFromOutside =
    spec.nodePort !== 0 || spec.externalIPs.length > 0 || spec.loadBalancerIPs.length > 0;
  // External Local policy still needs cluster endpoints: pod-originated traffic to an external
  // address is short-circuited to the Cluster chain.
  const usesClusterEndpoints = !spec.internalPolicyLocal || accessibleFromOutside;
  const usesLocalEndpoints = spec.internalPolicyLocal || (spec.externalPolicyLocal && accessibleFromOutside);

  let clusterEndpoints: EndpointState[] = [];
  let hasEndpoints = false;
  if (usesClusterEndpoints) {
    const filter = topologyFilter(endpoints, node);
    clusterEndpoints = endpoints.filter(
      (endpoint) =>
        endpoint.ready &&
        (filter === 'none' ||
          (filter === 'node' && endpoint.nodeHints.includes(node.name)) ||
          (filter === 'zone' && endpoint.zoneHints.includes(node.zone))),
    );
    if (clusterEndpoints.length === 0) clusterEndpoints = endpoints.filter(servingTerminating);
    hasEndpoints = clusterEndpoints.length > 0;
  }
  if (!usesLocalEndpoints) return { clusterEndpoints, localEndpoints: [], hasEndpoints };

  if (endpoints.some((endpoint) => endpoint.ready || servingTerminating(endpoint))) hasEndpoints = true;
  let localEndpoints = endpoints.filter((endpoint) => endpoint.isLocal && endpoint.ready);
  if (localEndpoints.length === 0)
    localEndpoints = endpoints.filter((endpoint) => endpoint.isLocal && servingTerminating(endpoint));
  return { clusterEndpoints, localEndpoints, hasEndpoints };
}
