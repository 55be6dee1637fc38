/**
 * Pure core of the EndpointSlice controller (upstream staging/src/k8s.io/endpointslice/reconciler.go):
 * from a Service, its pods, the nodes and the slices that exist, decide which slices to create,
 * update and delete, with as little churn as upstream's reconciler.
 */
import type {
  DiscoveryV1EndpointPort,
  V1Endpoint,
  V1EndpointSlice,
  V1Node,
  V1OwnerReference,
  V1Pod,
  V1Service,
} from '@kubernetes/client-node';
import {
  ANNOTATION_LAST_CHANGE_TRIGGER_TIME,
  LABEL_HEADLESS_SERVICE,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
  LABEL_TOPOLOGY_ZONE,
  MANAGED_BY_ENDPOINTSLICE_CONTROLLER,
} from '../../api/labels.ts';
import { applyHintHeuristic, hintHeuristicFor, topologyAnnotationEnabled } from './hints.ts';
import {
  addressTypeOf,
  canonicalIP,
  findTargetPort,
  formatRFC3339Nano,
  type IPAddressType,
  isPodReady,
  isPodTerminating,
  isServiceIPSet,
  podIPs,
  podMatchesService,
  serviceSelector,
  shouldPodBeInEndpoints,
  shouldSetHostname,
} from './pods.ts';
import {
  addTopologyHints,
  type PlanEvent,
  topologyHintsDisabledEvent,
  type ZoneCapacity,
  zoneCapacityOf,
} from './topology-hints.ts';

/** Upstream's default for `--max-endpoints-per-slice`. */
export const DEFAULT_MAX_ENDPOINTS_PER_SLICE = 100;

/** Upstream's upper bound for `--max-endpoints-per-slice` (also the API's limit per slice). */
export const MAX_MAX_ENDPOINTS_PER_SLICE = 1000;

/** Inputs of {@link planEndpointSlices} besides the objects themselves. */
export interface PlanEndpointSlicesOptions {
  /** Endpoints per slice before another slice is started; 1..1000, default 100. */
  maxEndpointsPerSlice?: number;
  /** Time of the change that caused this sync; set as the trigger-time annotation on every write. */
  triggerTime?: Date;
  /** The managed-by label value this controller owns; default Portico's. */
  managedBy?: string;
  /**
   * The cluster's CPU by zone for `topology-mode: Auto` Services; by default computed from `nodes`
   * (which must then hold every node, not only those of the Service's pods).
   */
  zoneCapacity?: ZoneCapacity;
  /**
   * Whether the Service's slices carried `topology-mode: Auto` hints after its last sync, as the
   * reconciler remembers it (upstream keeps it in its topology cache). It decides the
   * `TopologyAwareHintsEnabled` and `TopologyAwareHintsDisabled` Events of a change of mode.
   */
  topologyHintsPopulated?: boolean;
}

/** The writes that bring a Service's EndpointSlices to the desired state. */
export interface EndpointSlicePlan {
  /** New slices; they carry `generateName`, the API server names them. */
  create: V1EndpointSlice[];
  /** Full replacements of existing slices, keeping their name and resourceVersion. */
  update: V1EndpointSlice[];
  /** Existing slices to delete. */
  delete: V1EndpointSlice[];
  /**
   * `namespace/name` of pods left out because their node is not known yet. Upstream publishes the
   * rest and returns an error so the Service is retried; the caller should requeue likewise.
   */
  podsOnMissingNodes: string[];
  /** Events to record on the Service (topology hints turned on or off, and why). */
  events: PlanEvent[];
  /** Whether the slices carry `topology-mode: Auto` hints after this plan; for the next sync's options. */
  topologyHintsPopulated: boolean;
}

/**
 * Checks `--max-endpoints-per-slice` as kube-controller-manager does.
 * @throws RangeError with Kubernetes' wording when the value is out of range.
 */
export function validateMaxEndpointsPerSlice(value: number): void {
  if (!Number.isInteger(value)) {
    throw new RangeError(`--max-endpoints-per-slice: Invalid value: ${value}: must be an integer`);
  }
  if (value < 1)
    throw new RangeError(`--max-endpoints-per-slice: Invalid value: ${value}: must not be less than 1`);
  if (value > MAX_MAX_ENDPOINTS_PER_SLICE) {
    throw new RangeError(
      `--max-endpoints-per-slice: Invalid value: ${value}: must not be more than ${MAX_MAX_ENDPOINTS_PER_SLICE}`,
    );
  }
}

/**
 * The address types a Service gets slices for: its `ipFamilies`; without them (objects from an
 * API server that predates dual-stack) the family of the cluster IP, or both for headless Services.
 */
export function addressTypesForService(service: V1Service): IPAddressType[] {
  const families = service.spec?.ipFamilies ?? [];
  const types: IPAddressType[] = [];
  if (families.includes('IPv4')) types.push('IPv4');
  if (families.includes('IPv6')) types.push('IPv6');
  if (types.length > 0) return types;
  if (isServiceIPSet(service))
    return [addressTypeOf(service.spec?.clusterIP ?? '') === 'IPv6' ? 'IPv6' : 'IPv4'];
  return ['IPv4', 'IPv6'];
}

/** Labels every slice of the Service carries (upstream `setEndpointSliceLabels`). */
export function endpointSliceLabels(service: V1Service, managedBy: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(service.metadata?.labels ?? {})) {
    // The controller owns these keys; a Service label cannot redirect a slice to another owner.
    if (key === LABEL_SERVICE_NAME || key === LABEL_MANAGED_BY || key === LABEL_HEADLESS_SERVICE) continue;
    labels[key] = value;
  }
  if (!isServiceIPSet(service)) labels[LABEL_HEADLESS_SERVICE] = '';
  labels[LABEL_SERVICE_NAME] = service.metadata?.name ?? '';
  labels[LABEL_MANAGED_BY] = managedBy;
  return labels;
}

/** The controller reference a slice of the Service carries. */
export function serviceOwnerReference(service: V1Service): V1OwnerReference {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    name: service.metadata?.name ?? '',
    uid: service.metadata?.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** True when the slice's controller reference points at this very Service (same uid). */
export function isOwnedBy(slice: V1EndpointSlice, service: V1Service): boolean {
  return (slice.metadata?.ownerReferences ?? []).some(
    (ref) => ref.uid === service.metadata?.uid && ref.kind === 'Service' && ref.apiVersion === 'v1',
  );
}

/**
 * `<name>-` as generateName, unless that is not a valid DNS subdomain prefix; then the bare name,
 * as upstream's `getEndpointSlicePrefix`.
 */
export function endpointSlicePrefix(name: string): string {
  const prefix = `${name}-`;
  return /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?-$/.test(prefix) && prefix.length <= 253 ? prefix : name;
}

function portKey(port: DiscoveryV1EndpointPort): string {
  return `${port.name ?? ''}\u0000${port.port ?? ''}\u0000${port.protocol ?? 'TCP'}\u0000${port.appProtocol ?? ''}`;
}

/** Identity of a port set regardless of order: slices are grouped by it. */
export function portSetKey(ports: readonly DiscoveryV1EndpointPort[]): string {
  return ports.map(portKey).sort().join('\u0001');
}

/**
 * Identity of an endpoint inside a port set (upstream endpointset.go): its addresses, hostname and
 * the pod it points at. Two endpoints with the same identity are the same endpoint, possibly with
 * changed conditions or topology.
 */
export function endpointKey(endpoint: V1Endpoint): string {
  const addresses = [...endpoint.addresses].sort().join(',');
  const ref = endpoint.targetRef;
  return `${addresses}\u0000${endpoint.hostname ?? ''}\u0000${ref?.namespace ?? ''}/${ref?.name ?? ''}`;
}

/**
 * Upstream's `EndpointsEqualBeyondHash`: conditions, node, zone and target (without its
 * resourceVersion). Hints are left out because they are reconciled separately.
 */
export function endpointsEqualBeyondKey(a: V1Endpoint, b: V1Endpoint): boolean {
  return (
    a.nodeName === b.nodeName &&
    a.zone === b.zone &&
    a.conditions?.ready === b.conditions?.ready &&
    a.conditions?.serving === b.conditions?.serving &&
    a.conditions?.terminating === b.conditions?.terminating &&
    a.targetRef?.kind === b.targetRef?.kind &&
    a.targetRef?.namespace === b.targetRef?.namespace &&
    a.targetRef?.name === b.targetRef?.name &&
    a.targetRef?.uid === b.targetRef?.uid &&
    a.targetRef?.apiVersion === b.targetRef?.apiVersion &&
    a.targetRef?.fieldPath === b.targetRef?.fieldPath
  );
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => b[key] === a[key]);
}

function podKey(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}

/** The slice ports a pod serves: every Service port whose targetPort resolves for this pod. */
function endpointPortsForPod(service: V1Service, pod: V1Pod): DiscoveryV1EndpointPort[] {
  const servicePorts = service.spec?.ports ?? [];
  const ports: DiscoveryV1EndpointPort[] = [];
  for (const servicePort of servicePorts) {
    const port = findTargetPort(pod, servicePort);
    if (port === undefined) continue;
    const endpointPort: DiscoveryV1EndpointPort = {
      name: servicePort.name ?? '',
      port,
      protocol: servicePort.protocol ?? 'TCP',
    };
    if (servicePort.appProtocol !== undefined) endpointPort.appProtocol = servicePort.appProtocol;
    ports.push(endpointPort);
  }
  return ports;
}

/** Upstream's `podToEndpoint` for one address type. */
function podToEndpoint(
  pod: V1Pod,
  node: V1Node | undefined,
  service: V1Service,
  addressType: IPAddressType,
): V1Endpoint {
  const serving = isPodReady(pod);
  const terminating = isPodTerminating(pod);
  const endpoint: V1Endpoint = {
    addresses: podIPs(pod)
      .filter((ip) => addressTypeOf(ip) === addressType)
      .map(canonicalIP),
    conditions: {
      // A terminating pod is never ready unless the Service publishes not-ready addresses, so
      // consumers that only look at `ready` stop sending it new traffic.
      ready: service.spec?.publishNotReadyAddresses === true || (serving && !terminating),
      serving,
      terminating,
    },
    targetRef: {
      kind: 'Pod',
      namespace: pod.metadata?.namespace ?? '',
      name: pod.metadata?.name ?? '',
      uid: pod.metadata?.uid ?? '',
    },
  };
  if (shouldSetHostname(pod, service)) endpoint.hostname = pod.spec?.hostname;
  const nodeName = pod.spec?.nodeName ?? '';
  if (nodeName !== '') endpoint.nodeName = nodeName;
  const zone = node?.metadata?.labels?.[LABEL_TOPOLOGY_ZONE] ?? '';
  if (zone !== '') endpoint.zone = zone;
  return endpoint;
}

interface DesiredGroup {
  ports: DiscoveryV1EndpointPort[];
  /** Insertion-ordered, so endpoints are placed in pod order and output is deterministic. */
  endpoints: Map<string, V1Endpoint>;
}

interface PlanContext {
  service: V1Service;
  labels: Record<string, string>;
  maxEndpointsPerSlice: number;
}

function newSlice(
  context: PlanContext,
  ports: DiscoveryV1EndpointPort[],
  addressType: IPAddressType,
): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      generateName: endpointSlicePrefix(context.service.metadata?.name ?? ''),
      namespace: context.service.metadata?.namespace ?? '',
      labels: { ...context.labels },
      ownerReferences: [serviceOwnerReference(context.service)],
    },
    addressType,
    endpoints: [],
    ports: ports.map((port) => ({ ...port })),
  };
}

function compareNames(a: V1EndpointSlice, b: V1EndpointSlice): number {
  const nameA = a.metadata?.name ?? '';
  const nameB = b.metadata?.name ?? '';
  if (nameA === nameB) return 0;
  return nameA < nameB ? -1 : 1;
}

interface GroupResult {
  create: V1EndpointSlice[];
  update: V1EndpointSlice[];
  delete: V1EndpointSlice[];
}

/**
 * Upstream's `reconcileByPortMapping` for one port set of one address type: keep endpoints in the
 * slice they are in, drop the ones no longer wanted, then place the rest into slices being updated
 * anyway (fullest first), then into the unchanged slice they fill best, and only then into new ones.
 */
function reconcilePortGroup(
  context: PlanContext,
  existing: readonly V1EndpointSlice[],
  desired: Map<string, V1Endpoint>,
  ports: DiscoveryV1EndpointPort[],
  addressType: IPAddressType,
): GroupResult {
  const max = context.maxEndpointsPerSlice;
  const remaining = new Map(desired);
  const toUpdate = new Map<string, V1EndpointSlice>();
  const toDelete: V1EndpointSlice[] = [];
  const unchanged = new Map<string, V1EndpointSlice>();

  for (const slice of existing) {
    const name = slice.metadata?.name ?? '';
    const kept: V1Endpoint[] = [];
    let endpointChanged = false;
    for (const endpoint of slice.endpoints ?? []) {
      const key = endpointKey(endpoint);
      const wanted = remaining.get(key);
      if (wanted === undefined) continue;
      kept.push(wanted);
      if (!endpointsEqualBeyondKey(wanted, endpoint)) endpointChanged = true;
      remaining.delete(key);
    }
    const labelsChanged = !sameLabels(slice.metadata?.labels ?? {}, context.labels);
    const endpointCount = slice.endpoints?.length ?? 0;
    if (endpointChanged || kept.length !== endpointCount) {
      if (kept.length === 0) {
        toDelete.push(slice);
      } else {
        const copy = structuredClone(slice);
        copy.endpoints = kept;
        copy.metadata = { ...copy.metadata, labels: { ...context.labels } };
        toUpdate.set(name, copy);
      }
    } else if (labelsChanged) {
      const copy = structuredClone(slice);
      copy.metadata = { ...copy.metadata, labels: { ...context.labels } };
      toUpdate.set(name, copy);
    } else {
      unchanged.set(name, slice);
    }
  }

  const pending = remaining.values();
  let next = pending.next();
  const fill = (slice: V1EndpointSlice): void => {
    const endpoints = slice.endpoints ?? [];
    slice.endpoints = endpoints;
    while (!next.done && endpoints.length < max) {
      endpoints.push(next.value);
      next = pending.next();
    }
  };
  let left = remaining.size;
  const take = (slice: V1EndpointSlice): void => {
    const before = slice.endpoints?.length ?? 0;
    fill(slice);
    left -= (slice.endpoints?.length ?? 0) - before;
  };

  if (left > 0 && toUpdate.size > 0) {
    const fullestFirst = [...toUpdate.values()].sort(
      (a, b) => (b.endpoints?.length ?? 0) - (a.endpoints?.length ?? 0) || compareNames(a, b),
    );
    for (const slice of fullestFirst) take(slice);
  }

  const create: V1EndpointSlice[] = [];
  while (left > 0) {
    let target: V1EndpointSlice | undefined;
    if (left < max && unchanged.size > 0) {
      const candidate = sliceToFill([...unchanged.values()], left, max);
      if (candidate !== undefined) {
        const name = candidate.metadata?.name ?? '';
        target = structuredClone(candidate);
        unchanged.delete(name);
        toUpdate.set(name, target);
      }
    }
    if (target === undefined) {
      target = newSlice(context, ports, addressType);
      create.push(target);
    }
    take(target);
  }

  return { create, update: [...toUpdate.values()], delete: toDelete };
}

/**
 * Upstream's `getSliceToFill`: the slice that ends closest to full after taking `count` endpoints
 * without going over; an exact fit wins at once.
 */
function sliceToFill(
  slices: readonly V1EndpointSlice[],
  count: number,
  max: number,
): V1EndpointSlice | undefined {
  let closestDiff = max;
  let closest: V1EndpointSlice | undefined;
  for (const slice of slices) {
    const diff = max - (count + (slice.endpoints?.length ?? 0));
    if (diff >= 0 && diff < closestDiff) {
      closestDiff = diff;
      closest = slice;
      if (diff === 0) return closest;
    }
  }
  return closest;
}

/**
 * True when an existing slice already is the placeholder the Service would get, so it is kept
 * rather than deleted and recreated.
 */
function isEquivalentPlaceholder(
  slice: V1EndpointSlice,
  placeholder: V1EndpointSlice,
  service: V1Service,
): boolean {
  return (
    slice.addressType === placeholder.addressType &&
    (slice.metadata?.namespace ?? '') === (placeholder.metadata?.namespace ?? '') &&
    sameLabels(slice.metadata?.labels ?? {}, placeholder.metadata?.labels ?? {}) &&
    isOwnedBy(slice, service) &&
    (slice.endpoints?.length ?? 0) === 0 &&
    (slice.ports?.length ?? 0) === 0
  );
}

/**
 * Upstream's `finalize` recycling: while there are both creates and deletes, a create becomes an
 * update of a slice that would be deleted (same address type, owned by this Service), which saves
 * a delete and a create. The update carries the recycled slice's uid and resourceVersion so a
 * concurrent change is detected as a conflict.
 */
function recycleDeletes(result: GroupResult, service: V1Service): void {
  for (let i = 0; i < result.delete.length && result.create.length > 0; ) {
    const doomed = result.delete[i]!;
    const created = result.create[result.create.length - 1]!;
    if (doomed.addressType === created.addressType && isOwnedBy(doomed, service)) {
      result.create.pop();
      created.metadata = {
        ...created.metadata,
        name: doomed.metadata?.name,
        uid: doomed.metadata?.uid,
        resourceVersion: doomed.metadata?.resourceVersion,
      };
      if (created.metadata.uid === undefined) delete created.metadata.uid;
      if (created.metadata.resourceVersion === undefined) delete created.metadata.resourceVersion;
      result.update.push(created);
      result.delete.splice(i, 1);
    } else {
      i++;
    }
  }
}

function setTriggerTime(slice: V1EndpointSlice, triggerTime: Date | undefined): void {
  const metadata = slice.metadata ?? {};
  slice.metadata = metadata;
  const annotations = { ...(metadata.annotations ?? {}) };
  if (triggerTime !== undefined)
    annotations[ANNOTATION_LAST_CHANGE_TRIGGER_TIME] = formatRFC3339Nano(triggerTime);
  else delete annotations[ANNOTATION_LAST_CHANGE_TRIGGER_TIME];
  metadata.annotations = annotations;
}

/**
 * Plans the EndpointSlice writes for one Service (upstream `Reconciler.Reconcile`).
 *
 * - `pods` may be a superset: pods outside the Service's namespace or selector are ignored.
 * - `nodes` maps node name to Node; pods on unknown nodes are left out (and reported) unless the
 *   Service publishes not-ready addresses.
 * - `existingSlices` may hold any slices: only those labelled for this Service and managed by
 *   `options.managedBy` are considered; others are never touched. Slices being deleted are ignored.
 *
 * The input objects are not modified. Applying the plan and planning again yields an empty plan.
 * ExternalName and selector-less Services get an empty plan (their slices belong to the user or to
 * the mirroring controller).
 */
export function planEndpointSlices(
  service: V1Service,
  pods: readonly V1Pod[],
  nodes: ReadonlyMap<string, V1Node>,
  existingSlices: readonly V1EndpointSlice[],
  options: PlanEndpointSlicesOptions = {},
): EndpointSlicePlan {
  const maxEndpointsPerSlice = options.maxEndpointsPerSlice ?? DEFAULT_MAX_ENDPOINTS_PER_SLICE;
  validateMaxEndpointsPerSlice(maxEndpointsPerSlice);
  const managedBy = options.managedBy ?? MANAGED_BY_ENDPOINTSLICE_CONTROLLER;
  const plan: EndpointSlicePlan = {
    create: [],
    update: [],
    delete: [],
    podsOnMissingNodes: [],
    events: [],
    topologyHintsPopulated: options.topologyHintsPopulated === true,
  };
  if (service.spec?.type === 'ExternalName' || serviceSelector(service) === undefined) return plan;

  const serviceName = service.metadata?.name ?? '';
  const namespace = service.metadata?.namespace ?? '';
  const context: PlanContext = {
    service,
    labels: endpointSliceLabels(service, managedBy),
    maxEndpointsPerSlice,
  };
  const addressTypes = addressTypesForService(service);
  const publishNotReady = service.spec?.publishNotReadyAddresses === true;

  const mine = existingSlices
    .filter(
      (slice) =>
        (slice.metadata?.namespace ?? '') === namespace &&
        slice.metadata?.labels?.[LABEL_SERVICE_NAME] === serviceName &&
        slice.metadata?.labels?.[LABEL_MANAGED_BY] === managedBy &&
        (slice.metadata?.deletionTimestamp === undefined || slice.metadata?.deletionTimestamp === null),
    )
    .sort(compareNames);
  const slicesByType = new Map<string, V1EndpointSlice[]>();
  for (const slice of mine) {
    if (!(addressTypes as string[]).includes(slice.addressType)) {
      plan.delete.push(slice);
      continue;
    }
    const list = slicesByType.get(slice.addressType) ?? [];
    list.push(slice);
    slicesByType.set(slice.addressType, list);
  }

  const candidates = pods
    .filter((pod) => podMatchesService(service, pod) && shouldPodBeInEndpoints(pod, true))
    .sort((a, b) => (podKey(a) < podKey(b) ? -1 : podKey(a) > podKey(b) ? 1 : 0));
  const portsByPod = candidates.map((pod) => endpointPortsForPod(service, pod));
  const missingNodes = new Set<string>();
  const heuristic = hintHeuristicFor(service);
  const autoHints = topologyAnnotationEnabled(service);
  const zoneCapacity = autoHints ? (options.zoneCapacity ?? zoneCapacityOf(nodes.values())) : undefined;

  for (const addressType of addressTypes) {
    const existing = slicesByType.get(addressType) ?? [];
    const result: GroupResult = { create: [], update: [], delete: [] };
    const existingByPorts = new Map<string, V1EndpointSlice[]>();
    for (const slice of existing) {
      if (!isOwnedBy(slice, service)) {
        // Left by an earlier Service of the same name (different uid): replaced, never adopted.
        result.delete.push(slice);
        continue;
      }
      const key = portSetKey(slice.ports ?? []);
      const list = existingByPorts.get(key) ?? [];
      list.push(slice);
      existingByPorts.set(key, list);
    }

    const desiredByPorts = new Map<string, DesiredGroup>();
    candidates.forEach((pod, i) => {
      const ports = portsByPod[i]!;
      const key = portSetKey(ports);
      let group = desiredByPorts.get(key);
      if (group === undefined) {
        group = { ports, endpoints: new Map() };
        desiredByPorts.set(key, group);
      }
      const nodeName = pod.spec?.nodeName ?? '';
      const node = nodes.get(nodeName);
      if (node === undefined && !publishNotReady) {
        missingNodes.add(podKey(pod));
        return;
      }
      const endpoint = podToEndpoint(pod, node, service, addressType);
      if (endpoint.addresses.length > 0) group.endpoints.set(endpointKey(endpoint), endpoint);
    });

    for (const key of [...desiredByPorts.keys()].sort()) {
      const group = desiredByPorts.get(key)!;
      const part = reconcilePortGroup(
        context,
        existingByPorts.get(key) ?? [],
        group.endpoints,
        group.ports,
        addressType,
      );
      result.create.push(...part.create);
      result.update.push(...part.update);
      result.delete.push(...part.delete);
    }
    for (const [key, slices] of existingByPorts) {
      if (!desiredByPorts.has(key)) result.delete.push(...slices);
    }

    // A Service without endpoints keeps one empty slice, so consumers can tell "no endpoints"
    // from "not yet processed".
    if (existing.length === result.delete.length && result.create.length === 0) {
      const placeholder = newSlice(context, [], addressType);
      if (result.delete.length === 1 && isEquivalentPlaceholder(result.delete[0]!, placeholder, service)) {
        result.delete = [];
      } else {
        result.create.push(placeholder);
      }
    }

    const touched = new Set([...result.update, ...result.delete].map((slice) => slice.metadata?.name ?? ''));
    const unchanged = existing.filter((slice) => !touched.has(slice.metadata?.name ?? ''));
    if (zoneCapacity !== undefined) {
      const outcome = addTopologyHints(
        { create: result.create, update: result.update, unchanged },
        zoneCapacity,
        addressType,
        plan.topologyHintsPopulated,
      );
      result.update.push(...outcome.update);
      plan.events.push(...outcome.events);
      plan.topologyHintsPopulated = outcome.populated;
    } else {
      // The annotation was removed: say so once, then let `trafficDistribution` (or nothing) hint.
      if (plan.topologyHintsPopulated) plan.events.push(topologyHintsDisabledEvent(addressType));
      plan.topologyHintsPopulated = false;
      result.update.push(...applyHintHeuristic(heuristic, [...result.create, ...result.update], unchanged));
    }
    recycleDeletes(result, service);

    plan.create.push(...result.create);
    plan.update.push(...result.update);
    plan.delete.push(...result.delete);
  }

  // Creating while the Service is being deleted would race the garbage collector.
  const deleting =
    service.metadata?.deletionTimestamp !== undefined && service.metadata?.deletionTimestamp !== null;
  if (deleting) plan.create = [];
  for (const slice of plan.create) setTriggerTime(slice, options.triggerTime);
  for (const slice of plan.update) setTriggerTime(slice, options.triggerTime);
  plan.update.sort(compareNames);
  plan.delete.sort(compareNames);
  plan.podsOnMissingNodes = [...missingNodes].sort();
  return plan;
}
