/**
 * Routing hints on EndpointSlice endpoints for `spec.trafficDistribution` (upstream
 * staging/src/k8s.io/endpointslice/trafficdist). Each heuristic can tell whether a slice already
 * carries the hints it wants, so slices that are otherwise unchanged are rewritten only when their
 * hints are wrong.
 */
import type { V1Endpoint, V1EndpointHints, V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { ANNOTATION_TOPOLOGY_AWARE_HINTS, ANNOTATION_TOPOLOGY_MODE } from '../../api/labels.ts';

/** How endpoints of a Service are hinted. */
export interface HintHeuristic {
  /** True when some endpoint of the slice does not carry the hints this heuristic wants. */
  needsUpdate(slice: V1EndpointSlice): boolean;
  /** Sets the wanted hints on the slice's endpoints, in place. */
  update(slice: V1EndpointSlice): void;
}

/** True for an endpoint consumers may route to; only those get hints. */
export function isEndpointReady(endpoint: V1Endpoint): boolean {
  return endpoint.conditions?.ready === true;
}

function hasOnlyHint(list: { name: string }[] | undefined, name: string): boolean {
  return list !== undefined && list.length === 1 && list[0]!.name === name;
}

/** No hints at all: used when no traffic distribution is requested, so stale hints are stripped. */
export const stripHints: HintHeuristic = {
  needsUpdate: (slice) => (slice.endpoints ?? []).some((endpoint) => endpoint.hints !== undefined),
  update: (slice) => {
    for (const endpoint of slice.endpoints ?? []) delete endpoint.hints;
  },
};

/**
 * Every ready endpoint is hinted for its own zone when it has one and, with `withNodeHints`, for its
 * own node. Not-ready endpoints are skipped: consumers only route to ready ones, and endpoints that
 * become ready arrive freshly built without hints.
 */
function preferCloseHints(withNodeHints: boolean): HintHeuristic {
  const wantedNode = (endpoint: V1Endpoint) => (withNodeHints ? endpoint.nodeName : undefined);
  return {
    needsUpdate: (slice) =>
      (slice.endpoints ?? []).some((endpoint) => {
        if (!isEndpointReady(endpoint)) return false;
        const zone = endpoint.zone;
        const zoneWrong =
          zone === undefined
            ? (endpoint.hints?.forZones?.length ?? 0) > 0
            : !hasOnlyHint(endpoint.hints?.forZones, zone);
        const node = wantedNode(endpoint);
        const nodeWrong =
          node === undefined
            ? (endpoint.hints?.forNodes?.length ?? 0) > 0
            : !hasOnlyHint(endpoint.hints?.forNodes, node);
        return zoneWrong || nodeWrong;
      }),
    update: (slice) => {
      for (const endpoint of slice.endpoints ?? []) {
        if (!isEndpointReady(endpoint)) continue;
        const node = wantedNode(endpoint);
        const hints: V1EndpointHints = {};
        if (endpoint.zone !== undefined) hints.forZones = [{ name: endpoint.zone }];
        if (node !== undefined) hints.forNodes = [{ name: node }];
        if (hints.forZones === undefined && hints.forNodes === undefined) delete endpoint.hints;
        else endpoint.hints = hints;
      }
    },
  };
}

const sameZoneHints = preferCloseHints(false);
const sameNodeHints = preferCloseHints(true);

/**
 * True when the Service asks for topology-aware routing through its annotation (the legacy key wins
 * when both are set). The annotation takes precedence over `trafficDistribution`, as upstream
 * decides: such Services get the CPU-proportional hints of `topology-hints.ts` instead.
 */
export function topologyAnnotationEnabled(service: V1Service): boolean {
  const annotations = service.metadata?.annotations ?? {};
  const value = annotations[ANNOTATION_TOPOLOGY_AWARE_HINTS] ?? annotations[ANNOTATION_TOPOLOGY_MODE];
  return value === 'Auto' || value === 'auto';
}

/**
 * The hint heuristic for a Service's `spec.trafficDistribution`: zone hints for `PreferClose` and
 * `PreferSameZone`, zone and node hints for `PreferSameNode`; other values strip hints. With the
 * topology annotation set, the field is ignored (hints are stripped here; the planner then runs
 * the topology heuristic instead).
 */
export function hintHeuristicFor(service: V1Service): HintHeuristic {
  if (topologyAnnotationEnabled(service)) return stripHints;
  switch (service.spec?.trafficDistribution) {
    case 'PreferClose':
    case 'PreferSameZone':
      return sameZoneHints;
    case 'PreferSameNode':
      return sameNodeHints;
    default:
      return stripHints;
  }
}

/**
 * Gives the slices being written the hints `heuristic` wants, in place, and returns hinted copies
 * of the unchanged slices whose hints are wrong, to be written as updates.
 */
export function applyHintHeuristic(
  heuristic: HintHeuristic,
  written: readonly V1EndpointSlice[],
  unchanged: readonly V1EndpointSlice[],
): V1EndpointSlice[] {
  for (const slice of written) heuristic.update(slice);
  const hinted: V1EndpointSlice[] = [];
  for (const slice of unchanged) {
    if (!heuristic.needsUpdate(slice)) continue;
    // Unchanged slices are the caller's (informer cache) objects: copy before touching.
    const copy = structuredClone(slice);
    heuristic.update(copy);
    hinted.push(copy);
  }
  return hinted;
}
