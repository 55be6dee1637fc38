/**
 * events.k8s.io/v1 Events are the same objects as core/v1 Events in another shape: kube-apiserver
 * stores them once and converts on the way in and out, so an Event a controller writes with the new
 * API shows in `kubectl describe` (which reads core/v1). This module is that conversion.
 */

import { isObject, type JsonObject } from './patch.ts';
import { BUILTIN_RESOURCES, type ResourceType } from './resources.ts';

/** Field renames between core/v1 (left) and events.k8s.io/v1 (right). */
const RENAMES: [string, string][] = [
  ['involvedObject', 'regarding'],
  ['message', 'note'],
  ['reportingComponent', 'reportingController'],
  ['source', 'deprecatedSource'],
  ['firstTimestamp', 'deprecatedFirstTimestamp'],
  ['lastTimestamp', 'deprecatedLastTimestamp'],
  ['count', 'deprecatedCount'],
];

/** Fields with the same name in both versions. */
const SHARED = [
  'metadata',
  'eventTime',
  'series',
  'reportingInstance',
  'action',
  'reason',
  'related',
  'type',
];

function rename(object: JsonObject, pairs: [string, string][], apiVersion: string): JsonObject {
  const result: JsonObject = { apiVersion, kind: 'Event' };
  for (const field of SHARED) if (object[field] !== undefined) result[field] = object[field];
  for (const [from, to] of pairs) if (object[from] !== undefined) result[to] = object[from];
  return result;
}

/** A core/v1 Event as events.k8s.io/v1 shows it. */
export function coreEventToV1(event: JsonObject): JsonObject {
  return rename(event, RENAMES, 'events.k8s.io/v1');
}

/** An events.k8s.io/v1 Event in its stored (core/v1) shape. */
export function v1EventToCore(event: JsonObject): JsonObject {
  return rename(
    event,
    RENAMES.map(([core, v1]) => [v1, core]),
    'v1',
  );
}

/** How a resource maps onto the storage of another: its storage type and the two conversions. */
export interface StorageView {
  storage: ResourceType;
  toStored(object: unknown): unknown;
  fromStored(object: JsonObject): JsonObject;
}

const CORE_EVENTS = BUILTIN_RESOURCES.find((r) => r.group === '' && r.plural === 'events')!;

/** The storage view of a resource stored as another, or undefined when it is stored as itself. */
export function storageViewOf(resource: ResourceType): StorageView | undefined {
  if (resource.group !== 'events.k8s.io' || resource.plural !== 'events') return undefined;
  return {
    storage: CORE_EVENTS,
    toStored: (object) => (isObject(object) ? v1EventToCore(object) : object),
    fromStored: coreEventToV1,
  };
}
