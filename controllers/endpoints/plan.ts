/**
 * Pure core of the Endpoints controller (upstream pkg/controller/endpoint): which pods a Service's
 * core/v1 Endpoints lists, in Kubernetes' canonical subset form, capped at 1000 addresses, and
 * whether the existing object has to be created, updated or deleted.
 */
import type {
  CoreV1EndpointPort,
  V1EndpointAddress,
  V1EndpointSubset,
  V1Endpoints,
  V1Pod,
  V1Service,
} from '@kubernetes/client-node';
import {
  ANNOTATION_ENDPOINTS_OVER_CAPACITY,
  ANNOTATION_LAST_CHANGE_TRIGGER_TIME,
  ANNOTATION_LEADER_ELECTION,
  ENDPOINTS_OVER_CAPACITY_TRUNCATED,
  LABEL_HEADLESS_SERVICE,
} from '../../api/labels.ts';
import {
  addressTypeOf,
  findTargetPort,
  formatRFC3339Nano,
  type IPAddressType,
  isPodReady,
  isServiceIPSet,
  podIPs,
  podMatchesService,
  serviceSelector,
  shouldPodBeInEndpoints,
  shouldSetHostname,
} from '../endpointslice/pods.ts';

/** Upstream's cap on addresses (ready plus not ready) in one Endpoints object. */
export const MAX_ENDPOINTS_ADDRESSES = 1000;

/**
 * The family of address an Endpoints object lists. Endpoints are single-stack: the Service's first
 * IP family, else the family of its cluster IP, else (headless, legacy) the family of the pod's IP.
 */
function endpointsFamilyFor(service: V1Service, pod: V1Pod): IPAddressType {
  const first = service.spec?.ipFamilies?.[0];
  if (first === 'IPv4' || first === 'IPv6') return first;
  if (isServiceIPSet(service)) return addressTypeOf(service.spec?.clusterIP ?? '') ?? 'IPv4';
  return addressTypeOf(pod.status?.podIP ?? '') === 'IPv6' ? 'IPv6' : 'IPv4';
}

function podToEndpointAddress(service: V1Service, pod: V1Pod): V1EndpointAddress | undefined {
  const family = endpointsFamilyFor(service, pod);
  const ip = podIPs(pod).find((candidate) => addressTypeOf(candidate) === family);
  if (ip === undefined) return undefined;
  const address: V1EndpointAddress = {
    ip,
    targetRef: {
      kind: 'Pod',
      namespace: pod.metadata?.namespace ?? '',
      name: pod.metadata?.name ?? '',
      uid: pod.metadata?.uid ?? '',
    },
  };
  const nodeName = pod.spec?.nodeName ?? '';
  if (nodeName !== '') address.nodeName = nodeName;
  if (shouldSetHostname(pod, service)) address.hostname = pod.spec?.hostname;
  return address;
}

function portKey(port: CoreV1EndpointPort): string {
  return `${port.name ?? ''}\u0000${port.port}\u0000${port.protocol ?? 'TCP'}\u0000${port.appProtocol ?? ''}`;
}

function addressKey(address: V1EndpointAddress): string {
  return `${address.ip}\u0000${address.targetRef?.uid ?? ''}`;
}

/** Byte-wise order of IP, then target UID, as upstream's `LessEndpointAddress`. */
function compareAddresses(a: V1EndpointAddress, b: V1EndpointAddress): number {
  if (a.ip !== b.ip) return a.ip < b.ip ? -1 : 1;
  const uidA = a.targetRef?.uid ?? '';
  const uidB = b.targetRef?.uid ?? '';
  if (uidA === uidB) return 0;
  return uidA < uidB ? -1 : 1;
}

function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

function subsetSortKey(subset: V1EndpointSubset): string {
  return (subset.ports ?? []).map(portKey).join('\u0001');
}

/** Drops empty lists, as the API's `omitempty` does, so built and read objects compare equal. */
function compactSubset(
  addresses: V1EndpointAddress[],
  notReadyAddresses: V1EndpointAddress[],
  ports: CoreV1EndpointPort[],
): V1EndpointSubset {
  const subset: V1EndpointSubset = {};
  if (addresses.length > 0) subset.addresses = addresses;
  if (notReadyAddresses.length > 0) subset.notReadyAddresses = notReadyAddresses;
  if (ports.length > 0) subset.ports = ports;
  return subset;
}

/**
 * Sorts addresses and ports inside each subset and the subsets themselves (upstream
 * `SortSubsets`). Upstream orders ports and subsets by a hash; Portico orders them by their fields,
 * which is just as deterministic and easier to read in `kubectl get -o yaml`.
 */
export function sortSubsets(subsets: readonly V1EndpointSubset[]): V1EndpointSubset[] {
  const sorted = subsets.map((subset) =>
    compactSubset(
      [...(subset.addresses ?? [])].sort(compareAddresses),
      [...(subset.notReadyAddresses ?? [])].sort(compareAddresses),
      [...(subset.ports ?? [])].sort((a, b) => compareStrings(portKey(a), portKey(b))),
    ),
  );
  return sorted.sort((a, b) => compareStrings(subsetSortKey(a), subsetSortKey(b)));
}

/**
 * Kubernetes' canonical subset form (upstream `RepackSubsets`): every port is mapped to the set of
 * addresses serving it, ports with the same address set are merged into one subset, and the result
 * is sorted. An address listed both ready and not ready counts as ready; an address without ports
 * (headless Service without ports) keeps a subset of its own.
 */
export function repackSubsets(subsets: readonly V1EndpointSubset[]): V1EndpointSubset[] {
  const portless = '\u0002';
  const allAddresses = new Map<string, V1EndpointAddress>();
  const portsByKey = new Map<string, CoreV1EndpointPort | undefined>();
  const readinessByPort = new Map<string, Map<string, boolean>>();
  const record = (port: string, address: V1EndpointAddress, ready: boolean): void => {
    const key = addressKey(address);
    if (!allAddresses.has(key)) allAddresses.set(key, address);
    let readiness = readinessByPort.get(port);
    if (readiness === undefined) {
      readiness = new Map();
      readinessByPort.set(port, readiness);
    }
    readiness.set(key, ready || (readiness.get(key) ?? false));
  };
  for (const subset of subsets) {
    const ports = subset.ports ?? [];
    const keys = ports.length === 0 ? [portless] : ports.map(portKey);
    ports.forEach((port, i) => {
      portsByKey.set(keys[i]!, port);
    });
    if (ports.length === 0) portsByKey.set(portless, undefined);
    for (const key of keys) {
      for (const address of subset.addresses ?? []) record(key, address, true);
      for (const address of subset.notReadyAddresses ?? []) record(key, address, false);
    }
  }
  const grouped = new Map<string, { readiness: Map<string, boolean>; ports: CoreV1EndpointPort[] }>();
  for (const [port, readiness] of readinessByPort) {
    const setKey = [...readiness]
      .map(([key, ready]) => `${key}\u0000${ready}`)
      .sort()
      .join('\u0001');
    let group = grouped.get(setKey);
    if (group === undefined) {
      group = { readiness, ports: [] };
      grouped.set(setKey, group);
    }
    const endpointPort = portsByKey.get(port);
    if (endpointPort !== undefined) group.ports.push(endpointPort);
  }
  const repacked: V1EndpointSubset[] = [];
  for (const group of grouped.values()) {
    const ready: V1EndpointAddress[] = [];
    const notReady: V1EndpointAddress[] = [];
    for (const [key, isReady] of group.readiness) {
      (isReady ? ready : notReady).push(allAddresses.get(key)!);
    }
    repacked.push({ addresses: ready, notReadyAddresses: notReady, ports: group.ports });
  }
  return sortSubsets(repacked);
}

/**
 * The subsets of a Service's Endpoints, in canonical form and not yet capped (upstream
 * `syncService` steps 4-10). Pods outside the Service's namespace or selector are ignored, so the
 * caller may pass a superset. A selector-less or ExternalName Service yields no subsets.
 */
export function computeEndpoints(service: V1Service, pods: readonly V1Pod[]): V1EndpointSubset[] {
  if (service.spec?.type === 'ExternalName' || serviceSelector(service) === undefined) return [];
  const publishNotReady = service.spec?.publishNotReadyAddresses === true;
  const servicePorts = service.spec?.ports ?? [];
  const raw: V1EndpointSubset[] = [];
  for (const pod of pods) {
    if (!podMatchesService(service, pod) || !shouldPodBeInEndpoints(pod, publishNotReady)) continue;
    const address = podToEndpointAddress(service, pod);
    if (address === undefined) continue;
    const ready = publishNotReady || isPodReady(pod);
    const place = (ports: CoreV1EndpointPort[]): void => {
      raw.push(ready ? { addresses: [address], ports } : { notReadyAddresses: [address], ports });
    };
    if (servicePorts.length === 0) {
      // Only headless Services may omit ports; their addresses are still published for DNS.
      if (service.spec?.clusterIP === 'None') place([]);
      continue;
    }
    for (const servicePort of servicePorts) {
      const port = findTargetPort(pod, servicePort);
      if (port === undefined) continue;
      const endpointPort: CoreV1EndpointPort = { port, protocol: servicePort.protocol ?? 'TCP' };
      if (servicePort.name) endpointPort.name = servicePort.name;
      if (servicePort.appProtocol) endpointPort.appProtocol = servicePort.appProtocol;
      place([endpointPort]);
    }
  }
  return repackSubsets(raw);
}

/** Total addresses, ready and not ready, over all subsets. */
export function countAddresses(subsets: readonly V1EndpointSubset[]): number {
  let total = 0;
  for (const subset of subsets) {
    total += (subset.addresses?.length ?? 0) + (subset.notReadyAddresses?.length ?? 0);
  }
  return total;
}

/**
 * Caps canonical subsets at {@link MAX_ENDPOINTS_ADDRESSES} as upstream's `truncateEndpoints` does.
 * Ready addresses have priority: when more than the cap are ready, only ready addresses survive;
 * otherwise every ready address stays and the rest of the budget goes to not-ready ones. The budget
 * is spread over subsets in proportion to their size (rounded up, bounded by what is left), keeping
 * each subset's first addresses in canonical order.
 */
export function truncateSubsets(subsets: readonly V1EndpointSubset[]): {
  subsets: V1EndpointSubset[];
  truncated: boolean;
} {
  let totalReady = 0;
  let totalNotReady = 0;
  for (const subset of subsets) {
    totalReady += subset.addresses?.length ?? 0;
    totalNotReady += subset.notReadyAddresses?.length ?? 0;
  }
  if (totalReady + totalNotReady <= MAX_ENDPOINTS_ADDRESSES)
    return { subsets: [...subsets], truncated: false };
  const truncateReady = totalReady > MAX_ENDPOINTS_ADDRESSES;
  const budget = truncateReady ? MAX_ENDPOINTS_ADDRESSES : MAX_ENDPOINTS_ADDRESSES - totalReady;
  const total = truncateReady ? totalReady : totalNotReady;
  let remaining = budget;
  const result: V1EndpointSubset[] = [];
  for (const subset of subsets) {
    const ready = subset.addresses ?? [];
    const notReady = subset.notReadyAddresses ?? [];
    const inSubset = truncateReady ? ready.length : notReady.length;
    const share = Math.min(Math.ceil((inSubset / total) * budget), remaining);
    if (truncateReady) {
      const kept = ready.slice(0, share);
      remaining -= kept.length;
      result.push(compactSubset(kept, [], subset.ports ?? []));
    } else {
      const kept = notReady.slice(0, share);
      remaining -= kept.length;
      result.push(compactSubset(ready, kept, subset.ports ?? []));
    }
  }
  return { subsets: result, truncated: true };
}

/** What the Endpoints reconciler has to do for one Service. */
export interface EndpointsPlan {
  /** `none` writes nothing; `delete` removes {@link EndpointsPlan.object}. */
  action: 'none' | 'create' | 'update' | 'delete';
  /** The object to create or update (with the existing resourceVersion), or the one to delete. */
  object?: V1Endpoints;
}

/** Inputs of {@link planEndpoints} besides the objects themselves. */
export interface PlanEndpointsOptions {
  /**
   * Time of the change that caused this sync (see upstream's trigger-time tracker); written as the
   * last-change-trigger-time annotation, which is removed when absent.
   */
  triggerTime?: Date;
}

function withoutResourceVersions(subsets: readonly V1EndpointSubset[]): string {
  const strip = (addresses: V1EndpointAddress[] | undefined) =>
    addresses?.map((a) => ({
      ip: a.ip,
      hostname: a.hostname || undefined,
      nodeName: a.nodeName || undefined,
      targetRef: a.targetRef && {
        kind: a.targetRef.kind,
        namespace: a.targetRef.namespace,
        name: a.targetRef.name,
        uid: a.targetRef.uid,
      },
    }));
  return JSON.stringify(
    subsets.map((s) => ({
      addresses: strip(s.addresses),
      notReadyAddresses: strip(s.notReadyAddresses),
      ports: s.ports?.map((p) => ({
        name: p.name || undefined,
        port: p.port,
        protocol: p.protocol ?? 'TCP',
        appProtocol: p.appProtocol || undefined,
      })),
    })),
  );
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => b[key] === a[key]);
}

/**
 * Decides the write for a Service's Endpoints (upstream `syncService`). A missing Service deletes
 * its Endpoints; ExternalName and selector-less Services are left alone (users own those Endpoints).
 *
 * Labels are the Service's plus the headless label when it has no cluster IP. Unlike upstream, the
 * comparison is made after truncation and includes the headless label, so a Service over capacity or
 * toggling headless is written once and then left alone; only the trigger time never causes a write
 * by itself, as upstream.
 */
export function planEndpoints(
  service: V1Service | undefined,
  pods: readonly V1Pod[],
  existing: V1Endpoints | undefined,
  options: PlanEndpointsOptions = {},
): EndpointsPlan {
  if (service === undefined) {
    if (
      existing === undefined ||
      existing.metadata?.annotations?.[ANNOTATION_LEADER_ELECTION] !== undefined
    ) {
      return { action: 'none' };
    }
    return { action: 'delete', object: existing };
  }
  if (service.spec?.type === 'ExternalName' || serviceSelector(service) === undefined)
    return { action: 'none' };

  const capped = truncateSubsets(computeEndpoints(service, pods));
  const labels: Record<string, string> = { ...(service.metadata?.labels ?? {}) };
  if (isServiceIPSet(service)) delete labels[LABEL_HEADLESS_SERVICE];
  else labels[LABEL_HEADLESS_SERVICE] = '';

  if (existing !== undefined) {
    const annotations = existing.metadata?.annotations ?? {};
    const capacityCorrect = capped.truncated
      ? annotations[ANNOTATION_ENDPOINTS_OVER_CAPACITY] === ENDPOINTS_OVER_CAPACITY_TRUNCATED
      : annotations[ANNOTATION_ENDPOINTS_OVER_CAPACITY] === undefined;
    if (
      capacityCorrect &&
      sameLabels(labels, existing.metadata?.labels ?? {}) &&
      withoutResourceVersions(sortSubsets(existing.subsets ?? [])) === withoutResourceVersions(capped.subsets)
    ) {
      return { action: 'none' };
    }
  }

  const object: V1Endpoints =
    existing === undefined
      ? {
          apiVersion: 'v1',
          kind: 'Endpoints',
          metadata: { name: service.metadata?.name ?? '', namespace: service.metadata?.namespace ?? '' },
        }
      : structuredClone(existing);
  const metadata = object.metadata ?? {};
  object.metadata = metadata;
  metadata.labels = labels;
  const annotations: Record<string, string> = { ...(metadata.annotations ?? {}) };
  if (options.triggerTime !== undefined) {
    annotations[ANNOTATION_LAST_CHANGE_TRIGGER_TIME] = formatRFC3339Nano(options.triggerTime);
  } else {
    delete annotations[ANNOTATION_LAST_CHANGE_TRIGGER_TIME];
  }
  if (capped.truncated) annotations[ANNOTATION_ENDPOINTS_OVER_CAPACITY] = ENDPOINTS_OVER_CAPACITY_TRUNCATED;
  else delete annotations[ANNOTATION_ENDPOINTS_OVER_CAPACITY];
  metadata.annotations = annotations;
  object.subsets = capped.subsets;
  return { action: existing === undefined ? 'create' : 'update', object };
}
