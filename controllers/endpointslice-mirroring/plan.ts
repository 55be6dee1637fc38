/**
 * Pure core of the EndpointSlice mirroring controller (upstream pkg/controller/endpointslicemirroring):
 * selector-less Services whose Endpoints a user wrote get EndpointSlices mirroring those Endpoints,
 * so slice consumers (Portico's agent, kube-proxy) see them too.
 */
import type {
  DiscoveryV1EndpointPort,
  V1Endpoint,
  V1EndpointAddress,
  V1EndpointSlice,
  V1Endpoints,
  V1Service,
} from '@kubernetes/client-node';
import {
  ANNOTATION_KUBECTL_LAST_APPLIED,
  ANNOTATION_LAST_CHANGE_TRIGGER_TIME,
  ANNOTATION_LEADER_ELECTION,
  LABEL_MANAGED_BY,
  LABEL_SERVICE_NAME,
  LABEL_SKIP_MIRROR,
  MANAGED_BY_ENDPOINTSLICE_MIRRORING_CONTROLLER,
} from '../../api/labels.ts';
import { repackSubsets } from '../endpoints/plan.ts';
import {
  endpointKey,
  endpointSlicePrefix,
  endpointsEqualBeyondKey,
  portSetKey,
} from '../endpointslice/plan.ts';
import { addressTypeOf, canonicalIP, type IPAddressType, serviceSelector } from '../endpointslice/pods.ts';

/** Upstream's default for `--mirroring-max-endpoints-per-subset`. */
export const DEFAULT_MAX_MIRRORED_ENDPOINTS_PER_SUBSET = 1000;

/** Inputs of {@link planMirroredSlices} besides the objects themselves. */
export interface PlanMirroredSlicesOptions {
  /** Addresses mirrored from one Endpoints subset (ready ones first); 1..1000, default 1000. */
  maxEndpointsPerSubset?: number;
  /** The managed-by label value this controller owns; default Portico's mirroring value. */
  managedBy?: string;
}

/** An Event the reconciler should record on the Endpoints object. */
export interface MirroringEvent {
  type: 'Warning';
  reason: 'InvalidIPAddress' | 'TooManyAddressesToMirror';
  message: string;
}

/** The writes that bring the mirrored slices of one Endpoints object to the desired state. */
export interface MirroredSlicePlan {
  create: V1EndpointSlice[];
  update: V1EndpointSlice[];
  delete: V1EndpointSlice[];
  /** Warnings about addresses that were not mirrored. */
  events: MirroringEvent[];
}

/**
 * Checks `--mirroring-max-endpoints-per-subset` as kube-controller-manager does.
 * @throws RangeError with Kubernetes' wording when the value is out of range.
 */
export function validateMaxEndpointsPerSubset(value: number): void {
  const flag = '--mirroring-max-endpoints-per-subset';
  if (!Number.isInteger(value)) throw new RangeError(`${flag}: Invalid value: ${value}: must be an integer`);
  if (value < 1) throw new RangeError(`${flag}: Invalid value: ${value}: must not be less than 1`);
  if (value > 1000) throw new RangeError(`${flag}: Invalid value: ${value}: must not be more than 1000`);
}

/**
 * True when the Endpoints should be mirrored: a Service of the same name exists without a selector,
 * and the Endpoints neither opts out (`skip-mirror: "true"`) nor is a leader-election record.
 */
export function shouldMirror(service: V1Service | undefined, endpoints: V1Endpoints | undefined): boolean {
  if (service === undefined || endpoints === undefined) return false;
  if (endpoints.metadata?.labels?.[LABEL_SKIP_MIRROR] === 'true') return false;
  if (endpoints.metadata?.annotations?.[ANNOTATION_LEADER_ELECTION] !== undefined) return false;
  return serviceSelector(service) === undefined;
}

function mirroredAnnotations(endpoints: V1Endpoints): Record<string, string> {
  const annotations: Record<string, string> = {};
  for (const [key, value] of Object.entries(endpoints.metadata?.annotations ?? {})) {
    // The trigger time belongs to the Endpoints write, and kubectl's apply record describes the
    // Endpoints manifest: copying either would misdescribe the slice.
    if (key === ANNOTATION_LAST_CHANGE_TRIGGER_TIME || key === ANNOTATION_KUBECTL_LAST_APPLIED) continue;
    annotations[key] = value;
  }
  return annotations;
}

function mirroredLabels(endpoints: V1Endpoints, managedBy: string): Record<string, string> {
  return {
    ...(endpoints.metadata?.labels ?? {}),
    [LABEL_SERVICE_NAME]: endpoints.metadata?.name ?? '',
    [LABEL_MANAGED_BY]: managedBy,
  };
}

function sameMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => b[key] === a[key]);
}

function addressToEndpoint(address: V1EndpointAddress, ip: string, ready: boolean): V1Endpoint {
  const endpoint: V1Endpoint = { addresses: [ip], conditions: { ready } };
  if (address.hostname) endpoint.hostname = address.hostname;
  if (address.nodeName !== undefined) endpoint.nodeName = address.nodeName;
  if (address.targetRef !== undefined) endpoint.targetRef = structuredClone(address.targetRef);
  return endpoint;
}

interface DesiredGroup {
  addressType: IPAddressType;
  ports: DiscoveryV1EndpointPort[];
  endpoints: Map<string, V1Endpoint>;
}

function compareNames(a: V1EndpointSlice, b: V1EndpointSlice): number {
  const nameA = a.metadata?.name ?? '';
  const nameB = b.metadata?.name ?? '';
  if (nameA === nameB) return 0;
  return nameA < nameB ? -1 : 1;
}

/** True when the slice already mirrors the group exactly (endpoints, labels and annotations). */
function mirrorsExactly(slice: V1EndpointSlice, group: DesiredGroup, endpoints: V1Endpoints): boolean {
  let matches = 0;
  for (const endpoint of slice.endpoints ?? []) {
    const wanted = group.endpoints.get(endpointKey(endpoint));
    if (wanted === undefined || !endpointsEqualBeyondKey(wanted, endpoint)) return false;
    matches += 1;
  }
  if (matches !== group.endpoints.size) return false;
  // The reserved keys are left out on both sides: upstream compares the Endpoints' own copy of them
  // too, which rewrites the slice on every sync when a user sets one on the Endpoints.
  const withoutReserved = (labels: Record<string, string> | undefined) => {
    const copy = { ...(labels ?? {}) };
    delete copy[LABEL_SERVICE_NAME];
    delete copy[LABEL_MANAGED_BY];
    return copy;
  };
  return (
    sameMap(withoutReserved(endpoints.metadata?.labels), withoutReserved(slice.metadata?.labels)) &&
    sameMap(mirroredAnnotations(endpoints), slice.metadata?.annotations ?? {})
  );
}

/**
 * Plans the mirrored slices for one Endpoints object (upstream `reconciler.reconcile`).
 *
 * Each subset of the canonical (repacked) Endpoints becomes one slice per address family; at most
 * `maxEndpointsPerSubset` addresses are taken from a subset, ready ones first, and invalid IPs are
 * skipped, both reported as Warning events. Per port set and family the first existing slice is
 * kept (updated in place if anything differs) and the others are deleted; leftover creates reuse
 * slices about to be deleted. When the Endpoints should not be mirrored (see {@link shouldMirror}),
 * every mirrored slice is deleted. Only slices labelled for this name and managed by
 * `options.managedBy` are considered.
 */
export function planMirroredSlices(
  service: V1Service | undefined,
  endpoints: V1Endpoints | undefined,
  existingSlices: readonly V1EndpointSlice[],
  options: PlanMirroredSlicesOptions = {},
): MirroredSlicePlan {
  const max = options.maxEndpointsPerSubset ?? DEFAULT_MAX_MIRRORED_ENDPOINTS_PER_SUBSET;
  validateMaxEndpointsPerSubset(max);
  const managedBy = options.managedBy ?? MANAGED_BY_ENDPOINTSLICE_MIRRORING_CONTROLLER;
  const identity = endpoints?.metadata ?? service?.metadata;
  const mine = existingSlices
    .filter(
      (slice) =>
        slice.metadata?.labels?.[LABEL_MANAGED_BY] === managedBy &&
        (identity === undefined ||
          ((slice.metadata?.namespace ?? '') === (identity.namespace ?? '') &&
            slice.metadata?.labels?.[LABEL_SERVICE_NAME] === identity.name)) &&
        (slice.metadata?.deletionTimestamp === undefined || slice.metadata?.deletionTimestamp === null),
    )
    .sort(compareNames);
  const plan: MirroredSlicePlan = { create: [], update: [], delete: [], events: [] };
  if (endpoints === undefined || !shouldMirror(service, endpoints)) {
    plan.delete = mine;
    return plan;
  }

  const groups = new Map<string, DesiredGroup>();
  let invalid = 0;
  let skipped = 0;
  for (const subset of repackSubsets(endpoints.subsets ?? [])) {
    const ports: DiscoveryV1EndpointPort[] = (subset.ports ?? []).map((port) => {
      const mirrored: DiscoveryV1EndpointPort = {
        name: port.name ?? '',
        port: port.port,
        protocol: port.protocol ?? 'TCP',
      };
      if (port.appProtocol !== undefined) mirrored.appProtocol = port.appProtocol;
      return mirrored;
    });
    const keyFor = (addressType: IPAddressType) => `${addressType}\u0003${portSetKey(ports)}`;
    for (const addressType of ['IPv4', 'IPv6'] as const) {
      // Both families get a group, so slices of a family the subset no longer has are deleted.
      if (!groups.has(keyFor(addressType)))
        groups.set(keyFor(addressType), { addressType, ports, endpoints: new Map() });
    }
    const candidates: [V1EndpointAddress, boolean][] = [
      ...(subset.addresses ?? []).map((a): [V1EndpointAddress, boolean] => [a, true]),
      ...(subset.notReadyAddresses ?? []).map((a): [V1EndpointAddress, boolean] => [a, false]),
    ];
    let added = 0;
    for (const [address, ready] of candidates) {
      if (added >= max) break;
      const addressType = addressTypeOf(address.ip);
      if (addressType === undefined) {
        invalid += 1;
        continue;
      }
      const endpoint = addressToEndpoint(address, canonicalIP(address.ip), ready);
      groups.get(keyFor(addressType))!.endpoints.set(endpointKey(endpoint), endpoint);
      added += 1;
    }
    skipped += candidates.length - added;
  }
  if (invalid > 0) {
    plan.events.push({
      type: 'Warning',
      reason: 'InvalidIPAddress',
      message: `Skipped ${invalid} invalid IP addresses when mirroring to EndpointSlices`,
    });
  }
  if (skipped > invalid) {
    plan.events.push({
      type: 'Warning',
      reason: 'TooManyAddressesToMirror',
      message: `A max of ${max} addresses can be mirrored to EndpointSlices per Endpoints subset. ${skipped} addresses were skipped`,
    });
  }

  const existingByKey = new Map<string, V1EndpointSlice[]>();
  for (const slice of mine) {
    const key = `${slice.addressType}\u0003${portSetKey(slice.ports ?? [])}`;
    const list = existingByKey.get(key) ?? [];
    list.push(slice);
    existingByKey.set(key, list);
  }

  const labels = mirroredLabels(endpoints, managedBy);
  const annotations = mirroredAnnotations(endpoints);
  for (const key of [...groups.keys()].sort()) {
    const group = groups.get(key)!;
    const existing = existingByKey.get(key) ?? [];
    if (group.endpoints.size === 0) {
      plan.delete.push(...existing);
      continue;
    }
    const [first, ...rest] = existing;
    plan.delete.push(...rest);
    if (first !== undefined && mirrorsExactly(first, group, endpoints)) continue;
    const slice: V1EndpointSlice = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        namespace: endpoints.metadata?.namespace ?? '',
        labels: { ...labels },
        annotations: { ...annotations },
        ownerReferences: [
          {
            apiVersion: 'v1',
            kind: 'Endpoints',
            name: endpoints.metadata?.name ?? '',
            uid: endpoints.metadata?.uid ?? '',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      addressType: group.addressType,
      endpoints: [...group.endpoints.values()],
      ports: group.ports.map((port) => ({ ...port })),
    };
    if (first === undefined) {
      slice.metadata!.generateName = endpointSlicePrefix(endpoints.metadata?.name ?? '');
      plan.create.push(slice);
    } else {
      adopt(slice, first);
      plan.update.push(slice);
    }
  }
  for (const [key, slices] of existingByKey) {
    if (!groups.has(key)) plan.delete.push(...slices);
  }

  // Reuse slices about to be deleted for the creates of the same family: one write instead of two.
  for (let i = 0; i < plan.delete.length && plan.create.length > 0; ) {
    const doomed = plan.delete[i]!;
    const index = plan.create.findIndex((slice) => slice.addressType === doomed.addressType);
    if (index < 0) {
      i++;
      continue;
    }
    const [recycled] = plan.create.splice(index, 1);
    delete recycled!.metadata!.generateName;
    adopt(recycled!, doomed);
    plan.update.push(recycled!);
    plan.delete.splice(i, 1);
  }

  if (endpoints.metadata?.deletionTimestamp !== undefined && endpoints.metadata?.deletionTimestamp !== null) {
    plan.create = [];
  }
  plan.update.sort(compareNames);
  plan.delete.sort(compareNames);
  return plan;
}

/** Makes `slice` a replacement of `existing`: same name, and its uid and resourceVersion for conflicts. */
function adopt(slice: V1EndpointSlice, existing: V1EndpointSlice): void {
  const metadata = slice.metadata ?? {};
  slice.metadata = metadata;
  metadata.name = existing.metadata?.name;
  if (existing.metadata?.uid !== undefined) metadata.uid = existing.metadata.uid;
  if (existing.metadata?.resourceVersion !== undefined)
    metadata.resourceVersion = existing.metadata.resourceVersion;
}
