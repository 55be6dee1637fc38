/**
 * Zone hints for Services annotated `service.kubernetes.io/topology-mode: Auto` (upstream
 * staging/src/k8s.io/endpointslice/topologycache): each zone gets a share of a Service's ready
 * endpoints proportional to its share of the cluster's allocatable CPU, so clients in every zone
 * send their traffic to endpoints that together have about that zone's capacity. When the shares
 * cannot be met without overloading some endpoint, hints are removed and an Event says why.
 */
import type { V1EndpointSlice, V1Node } from '@kubernetes/client-node';
import { LABEL_TOPOLOGY_ZONE } from '../../api/labels.ts';
import { applyHintHeuristic, isEndpointReady, stripHints } from './hints.ts';

/**
 * How much more traffic than its fair share an endpoint may get (upstream `overloadThreshold`):
 * a zone's minimum is its proportional share divided by 1.2.
 */
export const OVERLOAD_THRESHOLD = 0.2;

/** Nodes with any of these labels run no workloads upstream counts on; their CPU is left out. */
const EXCLUDED_NODE_LABELS = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master'];

/** Upstream's Event messages (topologycache/event.go), so users can search for them. */
export const TOPOLOGY_MESSAGES = {
  noZoneSpecified: 'One or more endpoints do not have a zone specified',
  noAllocatedHintsForZones: 'No hints allocated for zones',
  enabled: 'Topology Aware Hints has been enabled',
  disabled: 'Topology Aware Hints has been disabled',
  insufficientNodeInfo:
    'Insufficient Node information: allocatable CPU or zone not specified on one or more nodes',
  nodesReadyInOneZoneOnly: 'Nodes only ready in one zone',
  insufficientNumberOfEndpoints: 'Insufficient number of endpoints',
  minAllocationExceedsOverloadThreshold:
    'Unable to allocate minimum required endpoints to each zone without exceeding overload threshold',
} as const;

/** An Event the planner asks the reconciler to record on the Service. */
export interface PlanEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/**
 * The cluster's CPU by zone as the heuristic sees it: the share of each zone, or the reason there
 * is none (upstream `TopologyCache.SetNodes`).
 */
export type ZoneCapacity =
  | { readonly sufficient: true; readonly cpuRatioByZone: ReadonlyMap<string, number> }
  | { readonly sufficient: false; readonly reason: string };

const DECIMAL_SUFFIX_EXPONENTS: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  '': 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const BINARY_SUFFIX_POWERS: Record<string, bigint> = {
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n,
};
const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;

/**
 * A Kubernetes quantity (`4`, `3500m`, `1.5`, `2k`, `1Ki`, `5e2`) in thousandths, rounded up as
 * `resource.Quantity.MilliValue` does; undefined when the text is not a quantity. Exact decimal
 * arithmetic, so `0.1` is 100 and not 100.00000000000001.
 */
export function parseQuantityMillis(text: string): number | undefined {
  const match = QUANTITY.exec(text.trim());
  if (match === null) return undefined;
  const [, sign, number, suffix = ''] = match;
  const [whole = '', fraction = ''] = number!.split('.');
  const digits = BigInt(`${whole}${fraction}` || '0');
  let exponent = 3 - fraction.length;
  let binary = 1n;
  if (suffix in BINARY_SUFFIX_POWERS) binary = BINARY_SUFFIX_POWERS[suffix]!;
  else if (suffix in DECIMAL_SUFFIX_EXPONENTS) exponent += DECIMAL_SUFFIX_EXPONENTS[suffix]!;
  else exponent += Number(suffix.slice(1));
  const scaled = digits * binary;
  let millis: bigint;
  if (exponent >= 0) millis = scaled * 10n ** BigInt(exponent);
  else {
    const divisor = 10n ** BigInt(-exponent);
    millis = scaled / divisor + (scaled % divisor === 0n ? 0n : 1n);
  }
  const value = Number(millis);
  return sign === '-' && value !== 0 ? -value : value;
}

/** The status of the node's Ready condition; '' when it reports none. */
function nodeReadyStatus(node: V1Node): string {
  return node.status?.conditions?.find((condition) => condition.type === 'Ready')?.status ?? '';
}

/**
 * The CPU share of each zone among the ready nodes that are not control-plane nodes. Every such
 * node needs a zone label and a positive `status.allocatable.cpu`, and there must be two zones;
 * otherwise the capacity is insufficient and no Service gets hints.
 */
export function zoneCapacityOf(nodes: Iterable<V1Node>): ZoneCapacity {
  const millisByZone = new Map<string, number>();
  let total = 0;
  for (const node of nodes) {
    const labels = node.metadata?.labels ?? {};
    if (EXCLUDED_NODE_LABELS.some((label) => label in labels)) continue;
    if (nodeReadyStatus(node) !== 'True') continue;
    const zone = labels[LABEL_TOPOLOGY_ZONE] ?? '';
    const millis = parseQuantityMillis(node.status?.allocatable?.['cpu'] ?? '') ?? 0;
    // One node without the information makes every share unknowable, as upstream decides.
    if (zone === '' || millis <= 0)
      return { sufficient: false, reason: TOPOLOGY_MESSAGES.insufficientNodeInfo };
    millisByZone.set(zone, (millisByZone.get(zone) ?? 0) + millis);
    total += millis;
  }
  if (total === 0) return { sufficient: false, reason: TOPOLOGY_MESSAGES.insufficientNodeInfo };
  if (millisByZone.size < 2) return { sufficient: false, reason: TOPOLOGY_MESSAGES.nodesReadyInOneZoneOnly };
  const cpuRatioByZone = new Map<string, number>();
  for (const zone of [...millisByZone.keys()].sort())
    cpuRatioByZone.set(zone, millisByZone.get(zone)! / total);
  return { sufficient: true, cpuRatioByZone };
}

/**
 * What of a Node {@link zoneCapacityOf} reads, as one comparable string, so a node update that
 * leaves it alone can skip recomputing the shares (upstream watches readiness and zone;
 * allocatable CPU and the control-plane labels count as well, since they change the shares too).
 */
export function zoneCapacityInputs(node: V1Node): string {
  const labels = node.metadata?.labels ?? {};
  return JSON.stringify([
    nodeReadyStatus(node),
    labels[LABEL_TOPOLOGY_ZONE] ?? '',
    node.status?.allocatable?.['cpu'] ?? '',
    ...EXCLUDED_NODE_LABELS.map((label) => label in labels),
  ]);
}

/** How many of a Service's ready endpoints one zone should be hinted for. */
interface ZoneAllocation {
  minimum: number;
  maximum: number;
  desired: number;
}

type Allocations = { ok: true; byZone: Map<string, ZoneAllocation> } | { ok: false; message: string };

/**
 * Upstream `getAllocations`: each zone's desired share, its minimum (the share an endpoint can
 * carry at 20 % overload) and its maximum (its minimum plus whatever no zone's minimum needs).
 */
function allocationsFor(capacity: ZoneCapacity, readyEndpoints: number): Allocations {
  if (!capacity.sufficient) return { ok: false, message: capacity.reason };
  const zones = capacity.cpuRatioByZone.size;
  const counts = `(${readyEndpoints} endpoints, ${zones} zones)`;
  if (zones > readyEndpoints) {
    return { ok: false, message: `${TOPOLOGY_MESSAGES.insufficientNumberOfEndpoints} ${counts}` };
  }
  const byZone = new Map<string, ZoneAllocation>();
  let minimumTotal = 0;
  for (const [zone, ratio] of capacity.cpuRatioByZone) {
    const desired = ratio * readyEndpoints;
    const minimum = Math.ceil(desired / (1 + OVERLOAD_THRESHOLD));
    byZone.set(zone, { minimum, maximum: 0, desired: Math.max(desired, minimum) });
    minimumTotal += minimum;
  }
  if (minimumTotal > readyEndpoints) {
    return { ok: false, message: `${TOPOLOGY_MESSAGES.minAllocationExceedsOverloadThreshold} ${counts}` };
  }
  for (const allocation of byZone.values())
    allocation.maximum = allocation.minimum + readyEndpoints - minimumTotal;
  return { ok: true, byZone };
}

function readyCount(slices: readonly V1EndpointSlice[]): number {
  let count = 0;
  for (const slice of slices)
    for (const endpoint of slice.endpoints ?? []) if (isEndpointReady(endpoint)) count++;
  return count;
}

/**
 * Upstream `getHintsByZone`: the hints an unchanged slice contributes per zone, or undefined when
 * the slice must be rewritten (a ready endpoint without zone hints, a hint for a zone that gets no
 * allocation, or more hints for a zone than its maximum allows).
 */
function hintsOfUnchangedSlice(
  slice: V1EndpointSlice,
  allocated: ReadonlyMap<string, number>,
  allocations: ReadonlyMap<string, ZoneAllocation>,
): Map<string, number> | undefined {
  const byZone = new Map<string, number>();
  for (const endpoint of slice.endpoints ?? []) {
    if (!isEndpointReady(endpoint)) continue;
    const forZones = endpoint.hints?.forZones ?? [];
    if (forZones.length === 0) return undefined;
    for (const { name } of forZones) {
      if (!allocations.has(name)) return undefined;
      byZone.set(name, (byZone.get(name) ?? 0) + 1);
    }
  }
  for (const [zone, count] of byZone) {
    if (count + (allocated.get(zone) ?? 0) > allocations.get(zone)!.maximum) return undefined;
  }
  return byZone;
}

/** The zone with the largest positive value; ties go to the first zone in name order. */
function largest(values: ReadonlyMap<string, number>): [string, number] | undefined {
  let best: [string, number] | undefined;
  for (const zone of [...values.keys()].sort()) {
    const value = values.get(zone)!;
    if (value > (best?.[1] ?? 0)) best = [zone, value];
  }
  return best;
}

/**
 * Upstream `getGivingAndReceivingZones`: how many whole endpoints each zone hands over or takes,
 * moving one endpoint at a time from the zone most above its desired share to the zone most below,
 * while both differ by at least half an endpoint and one of them by a whole one.
 */
function givingAndReceiving(
  allocations: ReadonlyMap<string, ZoneAllocation>,
  allocated: ReadonlyMap<string, number>,
): { giving: Map<string, number>; receiving: Map<string, number> } {
  const surplus = new Map<string, number>();
  const deficit = new Map<string, number>();
  for (const [zone, allocation] of allocations) {
    const hinted = allocated.get(zone) ?? 0;
    if (hinted > allocation.desired) surplus.set(zone, hinted - allocation.desired);
    else if (hinted < allocation.desired) deficit.set(zone, allocation.desired - hinted);
  }
  const giving = new Map<string, number>();
  const receiving = new Map<string, number>();
  for (;;) {
    const from = largest(surplus);
    const to = largest(deficit);
    if (from === undefined || to === undefined) break;
    const [fromZone, toGive] = from;
    const [toZone, toReceive] = to;
    if ((toGive < 1 && toReceive < 1) || toGive < 0.5 || toReceive < 0.5) break;
    giving.set(fromZone, (giving.get(fromZone) ?? 0) + 1);
    surplus.set(fromZone, toGive - 1);
    receiving.set(toZone, (receiving.get(toZone) ?? 0) + 1);
    deficit.set(toZone, toReceive - 1);
  }
  return { giving, receiving };
}

/** Upstream `redistributeHints`: re-hints endpoints of giving zones for receiving zones. */
function redistribute(
  slices: readonly V1EndpointSlice[],
  giving: Map<string, number>,
  receiving: Map<string, number>,
): Map<string, number> {
  const changes = new Map<string, number>();
  const receivers = () => [...receiving.keys()].sort();
  for (const slice of slices) {
    for (const endpoint of slice.endpoints ?? []) {
      if (!isEndpointReady(endpoint)) continue;
      if (giving.size === 0 || receiving.size === 0) return changes;
      const from = endpoint.zone ?? '';
      const toGive = giving.get(from) ?? 0;
      if (toGive <= 0) continue;
      const to = receivers()[0]!;
      endpoint.hints = { forZones: [{ name: to }] };
      if (toGive === 1) giving.delete(from);
      else giving.set(from, toGive - 1);
      const toReceive = receiving.get(to)!;
      if (toReceive === 1) receiving.delete(to);
      else receiving.set(to, toReceive - 1);
      changes.set(to, (changes.get(to) ?? 0) + 1);
      changes.set(from, (changes.get(from) ?? 0) - 1);
    }
  }
  return changes;
}

/** The slices of one Service and address type, as the planner has sorted them. */
export interface SlicesToHint {
  /** Slices about to be created; hinted in place. */
  create: V1EndpointSlice[];
  /** Slices about to be updated; hinted in place. */
  update: V1EndpointSlice[];
  /** Slices nothing else changes: the informer's objects, never modified. */
  unchanged: readonly V1EndpointSlice[];
}

/** What {@link addTopologyHints} decided. */
export interface TopologyHintsOutcome {
  /** Copies of unchanged slices whose hints had to change; to be written as updates. */
  update: V1EndpointSlice[];
  events: PlanEvent[];
  /** True when the slices now carry topology hints; false when they were removed. */
  populated: boolean;
}

function withAddressType(message: string, addressType: string): string {
  return `${message}, addressType: ${addressType}`;
}

/**
 * Upstream `TopologyCache.AddHints` for one Service and address type: keeps unchanged slices whose
 * hints still fit the allocation, hints every ready endpoint of the slices being written for its
 * own zone, then moves hints from zones above their share to zones below it. When the allocation
 * is impossible or an endpoint has no zone, every hint is removed and a Warning Event
 * `TopologyAwareHintsDisabled` gives the reason; `hintsWerePopulated` false yields a Normal
 * `TopologyAwareHintsEnabled` Event once hints go on.
 */
export function addTopologyHints(
  slices: SlicesToHint,
  capacity: ZoneCapacity,
  addressType: string,
  hintsWerePopulated: boolean,
): TopologyHintsOutcome {
  const disable = (message: string): TopologyHintsOutcome => ({
    // Upstream `RemoveHintsFromSlices`: every hint goes, on copies of unchanged slices too.
    update: applyHintHeuristic(stripHints, [...slices.create, ...slices.update], slices.unchanged),
    events: [
      {
        type: 'Warning',
        reason: 'TopologyAwareHintsDisabled',
        message: withAddressType(message, addressType),
      },
    ],
    populated: false,
  });
  const total = readyCount([...slices.create, ...slices.update, ...slices.unchanged]);
  const allocations = allocationsFor(capacity, total);
  if (!allocations.ok) return disable(allocations.message);

  const allocated = new Map<string, number>();
  const rewritten: V1EndpointSlice[] = [];
  const originals: V1EndpointSlice[] = [];
  for (const slice of slices.unchanged) {
    const hints = hintsOfUnchangedSlice(slice, allocated, allocations.byZone);
    if (hints === undefined) {
      rewritten.push(structuredClone(slice));
      originals.push(slice);
      continue;
    }
    for (const [zone, count] of hints) allocated.set(zone, (allocated.get(zone) ?? 0) + count);
  }

  const writable = [...slices.create, ...slices.update, ...rewritten];
  for (const slice of writable) {
    for (const endpoint of slice.endpoints ?? []) {
      if (!isEndpointReady(endpoint)) {
        delete endpoint.hints;
        continue;
      }
      const zone = endpoint.zone ?? '';
      if (zone === '') return disable(TOPOLOGY_MESSAGES.noZoneSpecified);
      allocated.set(zone, (allocated.get(zone) ?? 0) + 1);
      endpoint.hints = { forZones: [{ name: zone }] };
    }
  }

  const { giving, receiving } = givingAndReceiving(allocations.byZone, allocated);
  for (const [zone, change] of redistribute(writable, giving, receiving)) {
    allocated.set(zone, (allocated.get(zone) ?? 0) + change);
  }
  if (allocated.size === 0) return disable(TOPOLOGY_MESSAGES.noAllocatedHintsForZones);

  const events: PlanEvent[] = hintsWerePopulated
    ? []
    : [
        {
          type: 'Normal',
          reason: 'TopologyAwareHintsEnabled',
          message: withAddressType(TOPOLOGY_MESSAGES.enabled, addressType),
        },
      ];
  // A zone can stay above its maximum when the rest cannot take its surplus (less than half an
  // endpoint each); its slice is then recomputed to the hints it already has. Upstream rewrites it
  // on every sync; writing only real changes keeps a sync after a sync empty.
  const update = rewritten.filter((copy, i) => !sameHints(copy, originals[i]!));
  return { update, events, populated: true };
}

function sameHints(a: V1EndpointSlice, b: V1EndpointSlice): boolean {
  const hintsOf = (slice: V1EndpointSlice) =>
    JSON.stringify((slice.endpoints ?? []).map((e) => e.hints ?? null));
  return hintsOf(a) === hintsOf(b);
}

/**
 * The Event upstream records when a Service that had topology hints loses its annotation: the
 * hints are then removed, or replaced by those of `spec.trafficDistribution`.
 */
export function topologyHintsDisabledEvent(addressType: string): PlanEvent {
  return {
    type: 'Warning',
    reason: 'TopologyAwareHintsDisabled',
    message: withAddressType(TOPOLOGY_MESSAGES.disabled, addressType),
  };
}
