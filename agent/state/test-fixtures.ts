/**
 * Builders for the Services and EndpointSlices the agent's tests and benchmark feed in, shaped as
 * the API server returns them (defaults filled in).
 */
import type {
  V1Endpoint,
  V1EndpointSlice,
  V1Service,
  V1ServicePort,
  V1ServiceSpec,
} from '@kubernetes/client-node';
import { LABEL_SERVICE_NAME } from '../../api/labels.ts';
import { ipFamilyOf } from './ip.ts';
import type { NodeInfo } from './types.ts';

/** The node most tests run as. */
export const TEST_NODE: NodeInfo = {
  name: 'node-a',
  zone: 'zone-a',
  addresses: ['198.18.0.2', 'fd00:198:18::2'],
};

/** A Service; `spec` fields override the ClusterIP defaults. */
export function makeService(
  name: string,
  spec: Partial<V1ServiceSpec> = {},
  options: { namespace?: string; labels?: Record<string, string>; loadBalancerIPs?: string[] } = {},
): V1Service {
  const ports: V1ServicePort[] = spec.ports ?? [
    { name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 },
  ];
  const clusterIP = spec.clusterIP ?? '10.96.0.10';
  const service: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: options.namespace ?? 'default', labels: options.labels ?? {} },
    spec: {
      type: 'ClusterIP',
      ...spec,
      clusterIP,
      clusterIPs: spec.clusterIPs ?? [clusterIP],
      ports,
      sessionAffinity: spec.sessionAffinity ?? 'None',
    },
  };
  if (options.loadBalancerIPs !== undefined)
    service.status = {
      loadBalancer: { ingress: options.loadBalancerIPs.map((ip) => ({ ip, ipMode: 'VIP' })) },
    };
  return service;
}

/** One endpoint of a slice. */
export interface EndpointInput {
  ip: string;
  node?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  zone?: string;
  forZones?: string[];
  forNodes?: string[];
}

/** An EndpointSlice of `service` with one port (`http`/TCP/8080 unless given). */
export function makeSlice(
  service: string,
  endpoints: EndpointInput[],
  options: {
    name?: string;
    namespace?: string;
    ports?: { name: string; port: number; protocol?: string }[];
    labels?: Record<string, string>;
  } = {},
): V1EndpointSlice {
  const first = endpoints[0]?.ip ?? '10.0.0.1';
  const addressType = ipFamilyOf(first) ?? 'IPv4';
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: options.name ?? `${service}-abcde`,
      namespace: options.namespace ?? 'default',
      labels: { [LABEL_SERVICE_NAME]: service, ...options.labels },
    },
    addressType,
    ports: (options.ports ?? [{ name: 'http', port: 8080 }]).map((port) => ({
      name: port.name,
      port: port.port,
      protocol: port.protocol ?? 'TCP',
    })),
    endpoints: endpoints.map((input): V1Endpoint => {
      const endpoint: V1Endpoint = {
        addresses: [input.ip],
        conditions: {
          ready: input.ready ?? true,
          serving: input.serving ?? input.ready ?? true,
          terminating: input.terminating ?? false,
        },
      };
      if (input.node !== undefined) endpoint.nodeName = input.node;
      if (input.zone !== undefined) endpoint.zone = input.zone;
      if (input.forZones !== undefined || input.forNodes !== undefined) {
        endpoint.hints = {};
        if (input.forZones !== undefined) endpoint.hints.forZones = input.forZones.map((name) => ({ name }));
        if (input.forNodes !== undefined) endpoint.hints.forNodes = input.forNodes.map((name) => ({ name }));
      }
      return endpoint;
    }),
  };
}
