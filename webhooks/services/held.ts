import type { V1Service } from '@kubernetes/client-node';

/** Services informer index: a Service under each ClusterIP it holds. */
export const CLUSTER_IP_INDEX = 'clusterIP';

/** Services informer index: a Service under each node port (and healthCheckNodePort) it holds. */
export const NODE_PORT_INDEX = 'nodePort';

/** The ClusterIPs a Service holds: its clusterIPs without `None` and empty entries. */
export function heldClusterIPs(service: V1Service): string[] {
  const spec = service.spec;
  const ips = spec?.clusterIPs ?? (spec?.clusterIP ? [spec.clusterIP] : []);
  return ips.filter((ip) => ip !== '' && ip !== 'None');
}

/**
 * The node ports a Service holds: every non-zero nodePort and the healthCheckNodePort. Counted
 * whatever the type, as the repair loop counts them: a value written in a stored Service is in
 * use until the Service changes.
 */
export function heldNodePorts(service: V1Service): number[] {
  const ports = (service.spec?.ports ?? []).map((port) => port.nodePort ?? 0);
  ports.push(service.spec?.healthCheckNodePort ?? 0);
  return [...new Set(ports.filter((port) => port !== 0))];
}

/** Indexers for a Services informer that the webhooks and the release controller query. */
export const serviceIndexers = {
  [CLUSTER_IP_INDEX]: (service: V1Service): string[] => heldClusterIPs(service),
  [NODE_PORT_INDEX]: (service: V1Service): string[] => heldNodePorts(service).map(String),
};
