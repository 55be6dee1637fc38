/**
 * Service → per-port, per-family facts (everything but endpoints). Mirrors upstream's
 * `newBaseServiceInfo`: addresses of the other family are dropped quietly, because on a dual-stack
 * Service they belong to the other family's proxier.
 */
import type { V1Service } from '@kubernetes/client-node';
import { LABEL_HEADLESS_SERVICE, LABEL_SERVICE_PROXY_NAME } from '../../api/labels.ts';
import { cidrFamilyOf, ipFamilyOf } from './ip.ts';
import type { IPFamily, ServicePortState, ServiceProtocol } from './types.ts';

/** The fields of {@link ServicePortState} that come from the Service alone. */
export type ServicePortSpec = Omit<
  ServicePortState,
  'endpoints' | 'clusterEndpoints' | 'localEndpoints' | 'hasEndpoints'
>;

/** Annotation choosing a Service's IPVS scheduler (rr, lc, dh, sh, sed, nq); other modes ignore it. */
export const ANNOTATION_IPVS_SCHEDULER = 'portico.dev/ipvs-scheduler';

/** Upstream's default ClientIP affinity timeout (3 hours). */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10_800;

/**
 * Why a Service gets no rules at all, or null when it is proxied. `proxyName` is the agent's
 * `--service-proxy-name`: empty means "the default proxy", which ignores every Service carrying the
 * label, as kube-proxy does; a name claims the Services labelled with exactly that name.
 */
export function serviceSkipReason(service: V1Service, proxyName: string): string | null {
  const labels = service.metadata?.labels ?? {};
  const claimedBy = labels[LABEL_SERVICE_PROXY_NAME];
  if (claimedBy !== undefined && claimedBy !== proxyName) return `claimed by service proxy "${claimedBy}"`;
  if (LABEL_HEADLESS_SERVICE in labels) return 'labelled headless';
  const spec = service.spec ?? {};
  if (spec.type === 'ExternalName') return 'type ExternalName';
  if (spec.clusterIP === undefined || spec.clusterIP === '' || spec.clusterIP === 'None') return 'headless';
  return null;
}

/** The ServicePortName string of upstream: `ns/name:port`, without `:port` for an unnamed port. */
export function servicePortName(namespace: string, name: string, portName: string): string {
  return portName === '' ? `${namespace}/${name}` : `${namespace}/${name}:${portName}`;
}

function isProtocol(value: string): value is ServiceProtocol {
  return value === 'TCP' || value === 'UDP' || value === 'SCTP';
}

function ofFamily(addresses: readonly string[] | undefined, family: IPFamily): string[] {
  return [...new Set((addresses ?? []).filter((address) => ipFamilyOf(address) === family))].sort();
}

/**
 * The proxied ports of a Service in one family; empty when the Service is skipped
 * ({@link serviceSkipReason}) or has no cluster IP of that family.
 */
export function servicePortSpecs(service: V1Service, family: IPFamily, proxyName: string): ServicePortSpec[] {
  if (serviceSkipReason(service, proxyName) !== null) return [];
  const spec = service.spec ?? {};
  const namespace = service.metadata?.namespace ?? 'default';
  const name = service.metadata?.name ?? '';
  const clusterIPs = spec.clusterIPs && spec.clusterIPs.length > 0 ? spec.clusterIPs : [spec.clusterIP ?? ''];
  const clusterIP = clusterIPs.find((ip) => ipFamilyOf(ip) === family);
  if (clusterIP === undefined) return [];

  const type = spec.type ?? 'ClusterIP';
  const externalIPs = ofFamily(spec.externalIPs, family);
  const loadBalancerIPs =
    type === 'LoadBalancer'
      ? ofFamily(
          (service.status?.loadBalancer?.ingress ?? [])
            .filter((ingress) => ingress.ipMode === undefined || ingress.ipMode === 'VIP')
            .map((ingress) => ingress.ip ?? ''),
          family,
        )
      : [];
  // Source ranges arrive with stray spaces from hand-written manifests; the API server accepts them.
  const loadBalancerSourceRanges = [
    ...new Set(
      (spec.loadBalancerSourceRanges ?? [])
        .map((range) => range.trim())
        .filter((range) => cidrFamilyOf(range) === family),
    ),
  ].sort();
  const reachableFromOutside = type === 'NodePort' || type === 'LoadBalancer' || externalIPs.length > 0;
  const externalPolicyLocal = reachableFromOutside && spec.externalTrafficPolicy === 'Local';
  const affinityTimeoutSeconds =
    spec.sessionAffinity === 'ClientIP'
      ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS)
      : null;
  const healthCheckNodePort =
    type === 'LoadBalancer' && externalPolicyLocal ? (spec.healthCheckNodePort ?? 0) : 0;
  const ipvsScheduler = service.metadata?.annotations?.[ANNOTATION_IPVS_SCHEDULER] ?? '';

  const ports: ServicePortSpec[] = [];
  for (const port of spec.ports ?? []) {
    const protocol = port.protocol ?? 'TCP';
    if (!isProtocol(protocol)) continue;
    ports.push({
      name: servicePortName(namespace, name, port.name ?? ''),
      serviceKey: `${namespace}/${name}`,
      family,
      protocol,
      port: port.port,
      clusterIP,
      nodePort: type === 'NodePort' || type === 'LoadBalancer' ? (port.nodePort ?? 0) : 0,
      externalIPs,
      loadBalancerIPs,
      loadBalancerSourceRanges,
      affinityTimeoutSeconds,
      externalPolicyLocal,
      internalPolicyLocal: spec.internalTrafficPolicy === 'Local',
      healthCheckNodePort,
      ipvsScheduler,
    });
  }
  return ports;
}
