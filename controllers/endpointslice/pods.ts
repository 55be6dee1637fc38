/**
 * Pod and Service predicates shared by the Endpoints and EndpointSlice planners. They follow
 * upstream's `endpointslice/util` helpers so both controllers agree on which pods back a Service.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { V1Pod, V1Service, V1ServicePort } from '@kubernetes/client-node';

/** An EndpointSlice address type for IP endpoints. */
export type IPAddressType = 'IPv4' | 'IPv6';

/**
 * The Service's selector, or `undefined` when it selects nothing. An empty map counts as no selector
 * because the API serialises it away (`omitempty`), so it arrives as absent anyway.
 */
export function serviceSelector(service: V1Service): Record<string, string> | undefined {
  const selector = service.spec?.selector;
  if (selector === undefined || selector === null || Object.keys(selector).length === 0) return undefined;
  return selector;
}

/** True when the pod is in the Service's namespace and carries every selector label. */
export function podMatchesService(service: V1Service, pod: V1Pod): boolean {
  const selector = serviceSelector(service);
  if (selector === undefined) return false;
  if ((pod.metadata?.namespace ?? '') !== (service.metadata?.namespace ?? '')) return false;
  const labels = pod.metadata?.labels ?? {};
  for (const [key, value] of Object.entries(selector)) {
    if (labels[key] !== value) return false;
  }
  return true;
}

/** True when the Service has a cluster IP, i.e. is neither headless (`None`) nor without one. */
export function isServiceIPSet(service: V1Service): boolean {
  const clusterIP = service.spec?.clusterIP ?? '';
  return clusterIP !== '' && clusterIP !== 'None';
}

/** True when the pod's `Ready` condition is `True`. */
export function isPodReady(pod: V1Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** True when the pod is being deleted (graceful termination has begun). */
export function isPodTerminating(pod: V1Pod): boolean {
  return pod.metadata?.deletionTimestamp !== undefined && pod.metadata?.deletionTimestamp !== null;
}

/**
 * Upstream's `ShouldPodBeInEndpoints`: terminal pods and pods without an IP never back a Service;
 * pods being deleted do only when `includeTerminating` (publishNotReadyAddresses for Endpoints,
 * always for EndpointSlices, which report them with the terminating condition).
 */
export function shouldPodBeInEndpoints(pod: V1Pod, includeTerminating: boolean): boolean {
  const phase = pod.status?.phase;
  if (phase === 'Failed' || phase === 'Succeeded') return false;
  if (podIPs(pod).length === 0) return false;
  if (!includeTerminating && isPodTerminating(pod)) return false;
  return true;
}

/**
 * The pod's IPs in status order. `podIP` is the fallback for objects written without `podIPs`, which
 * the API server would otherwise have defaulted from it.
 */
export function podIPs(pod: V1Pod): string[] {
  const listed = (pod.status?.podIPs ?? []).map((entry) => entry.ip).filter((ip) => ip !== '');
  if (listed.length > 0) return listed;
  const single = pod.status?.podIP ?? '';
  return single === '' ? [] : [single];
}

/**
 * Upstream's `ShouldSetHostname`: a pod's hostname is published only when its subdomain names the
 * Service in the same namespace, which is how StatefulSet pods get per-pod DNS records.
 */
export function shouldSetHostname(pod: V1Pod, service: V1Service): boolean {
  const hostname = pod.spec?.hostname ?? '';
  return (
    hostname !== '' &&
    pod.spec?.subdomain === service.metadata?.name &&
    (pod.metadata?.namespace ?? '') === (service.metadata?.namespace ?? '')
  );
}

/**
 * Resolves a Service port's targetPort for one pod (upstream `FindPort`). A name is looked up among
 * the containers' ports with the same protocol, then among sidecars (init containers with
 * `restartPolicy: Always`); `undefined` means this pod does not serve the port and is left out of it.
 */
export function findTargetPort(pod: V1Pod, servicePort: V1ServicePort): number | undefined {
  const target = servicePort.targetPort ?? servicePort.port;
  if (typeof target === 'number') return target;
  const protocol = servicePort.protocol ?? 'TCP';
  const sidecars = (pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === 'Always');
  for (const container of [...(pod.spec?.containers ?? []), ...sidecars]) {
    for (const port of container.ports ?? []) {
      if (port.name === target && (port.protocol ?? 'TCP') === protocol) return port.containerPort;
    }
  }
  return undefined;
}

/** The address family of an IP string, or `undefined` when it is not a valid IP. */
export function addressTypeOf(ip: string): IPAddressType | undefined {
  if (isIPv4(ip)) return 'IPv4';
  if (isIPv6(ip)) return 'IPv6';
  return undefined;
}

/**
 * The canonical text of an IP (RFC 5952 for IPv6: lower case, longest zero run compressed), so the
 * same address written two ways compares equal; invalid input is returned as given.
 */
export function canonicalIP(ip: string): string {
  if (!isIPv6(ip)) return ip;
  const host = new URL(`http://[${ip}]/`).hostname;
  return host.slice(1, -1);
}

/**
 * Formats a time as Go's `time.RFC3339Nano` in UTC (fraction without trailing zeros), the format of
 * the last-change-trigger-time annotation.
 */
export function formatRFC3339Nano(time: Date): string {
  return time
    .toISOString()
    .replace(/\.(\d*?)0*Z$/, (_match, digits: string) => (digits ? `.${digits}Z` : 'Z'));
}
