/**
 * Server-side apply, simplified: each apply manager owns the fields of the manifest it last applied
 * (kept in metadata.managedFields as FieldsV1). Re-applying the same manifest changes nothing;
 * a field dropped from a manager's manifest is removed unless another apply manager owns it; a
 * field another apply manager owns with a different value is a 409 conflict unless `force` is set.
 * Fields written by plain updates are not tracked (they never conflict).
 */

import { ApiError } from './errors.ts';
import { isMergedScalarList, isObject, type JsonObject, jsonEqual, strategicMergeKey } from './patch.ts';
import { kubeTimestamp } from './registry.ts';
import { apiVersionOf, type ResourceType } from './resources.ts';

/** A path element: `f:<field>`, `k:<json of merge key>` or `v:<json of set value>`, as in FieldsV1. */
type FieldPath = string[];

const SEPARATOR = '\u0000';
const UNTRACKED_METADATA = new Set([
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
  'generateName',
]);

interface ManagedFieldsEntry {
  manager: string;
  operation: string;
  apiVersion?: string;
  time?: string;
  fieldsType?: string;
  fieldsV1?: JsonObject;
  subresource?: string;
}

/** Field names along a path, for merge-key lookups. */
function namesOf(path: FieldPath): string[] {
  return path.filter((p) => p.startsWith('f:')).map((p) => p.slice(2));
}

function collectFields(value: unknown, path: FieldPath, into: Set<string>): void {
  if (isObject(value)) {
    const entries = Object.entries(value).filter(([k]) => {
      if (path.length === 0) return k !== 'apiVersion' && k !== 'kind';
      if (path.length === 1 && path[0] === 'f:metadata') return !UNTRACKED_METADATA.has(k);
      return true;
    });
    if (entries.length === 0 && path.length > 0) into.add(path.join(SEPARATOR));
    for (const [k, v] of entries) collectFields(v, [...path, `f:${k}`], into);
    return;
  }
  if (Array.isArray(value)) {
    const names = namesOf(path);
    const key = strategicMergeKey(names);
    if (key !== undefined && value.every((item) => isObject(item) && item[key] !== undefined)) {
      for (const item of value as JsonObject[]) {
        const elem = [...path, `k:${JSON.stringify({ [key]: item[key] })}`];
        into.add(elem.join(SEPARATOR));
        collectFields(item, elem, into);
      }
      return;
    }
    if (isMergedScalarList(names)) {
      for (const item of value) into.add([...path, `v:${JSON.stringify(item)}`].join(SEPARATOR));
      return;
    }
  }
  into.add(path.join(SEPARATOR));
}

/** The set of field paths a manifest sets. */
function fieldsOf(manifest: JsonObject): Set<string> {
  const fields = new Set<string>();
  collectFields(manifest, [], fields);
  return fields;
}

function toFieldsV1(fields: Set<string>): JsonObject {
  const root: JsonObject = {};
  for (const path of fields) {
    let node = root;
    for (const elem of path.split(SEPARATOR)) {
      if (!isObject(node[elem])) node[elem] = {};
      node = node[elem] as JsonObject;
    }
    if (path.split(SEPARATOR).at(-1)!.startsWith('k:')) node['.'] = {};
  }
  return root;
}

function fromFieldsV1(node: unknown, path: FieldPath, into: Set<string>): void {
  if (!isObject(node)) return;
  const children = Object.keys(node).filter((k) => k !== '.');
  if (Object.hasOwn(node, '.') || (children.length === 0 && path.length > 0)) into.add(path.join(SEPARATOR));
  for (const child of children) fromFieldsV1(node[child], [...path, child], into);
}

function matchesKey(item: unknown, keyJson: string): boolean {
  const key = JSON.parse(keyJson) as JsonObject;
  return isObject(item) && Object.entries(key).every(([k, v]) => jsonEqual(item[k], v));
}

/** Reads the value at a field path, or undefined. */
function valueAt(object: unknown, path: string[]): unknown {
  let current = object;
  for (const elem of path) {
    if (elem.startsWith('f:')) current = isObject(current) ? current[elem.slice(2)] : undefined;
    else if (elem.startsWith('k:'))
      current = Array.isArray(current) ? current.find((i) => matchesKey(i, elem.slice(2))) : undefined;
    else if (elem.startsWith('v:')) {
      const v = JSON.parse(elem.slice(2)) as unknown;
      current = Array.isArray(current) && current.some((i) => jsonEqual(i, v)) ? v : undefined;
    }
    if (current === undefined) return undefined;
  }
  return current;
}

function removeAt(object: JsonObject, path: string[]): void {
  let parent: unknown = object;
  for (const elem of path.slice(0, -1)) {
    parent = valueAt(parent, [elem]);
    if (parent === undefined) return;
  }
  const last = path.at(-1)!;
  if (last.startsWith('f:') && isObject(parent)) delete parent[last.slice(2)];
  else if (Array.isArray(parent)) {
    const index = last.startsWith('k:')
      ? parent.findIndex((i) => matchesKey(i, last.slice(2)))
      : parent.findIndex((i) => jsonEqual(i, JSON.parse(last.slice(2))));
    if (index >= 0) parent.splice(index, 1);
  }
}

function mergeApplied(current: unknown, applied: unknown, names: string[]): unknown {
  if (isObject(applied)) {
    const result: JsonObject = isObject(current) ? { ...current } : {};
    for (const [k, v] of Object.entries(applied)) {
      if (v === null) delete result[k];
      else result[k] = mergeApplied(result[k], v, [...names, k]);
    }
    return result;
  }
  if (Array.isArray(applied) && Array.isArray(current)) {
    const key = strategicMergeKey(names);
    if (key !== undefined && applied.every((i) => isObject(i) && i[key] !== undefined)) {
      const result = [...current];
      for (const item of applied as JsonObject[]) {
        const index = result.findIndex((c) => isObject(c) && jsonEqual(c[key], item[key]));
        if (index >= 0) result[index] = mergeApplied(result[index], item, names);
        else result.push(item);
      }
      return result;
    }
    if (isMergedScalarList(names)) {
      const result = [...current];
      for (const item of applied) if (!result.some((c) => jsonEqual(c, item))) result.push(item);
      return result;
    }
  }
  return applied;
}

function managedFieldsOf(object: JsonObject | undefined): ManagedFieldsEntry[] {
  const meta = object && isObject(object.metadata) ? object.metadata : {};
  return Array.isArray(meta.managedFields)
    ? (meta.managedFields as ManagedFieldsEntry[]).filter(isObject)
    : [];
}

function ownedBy(entry: ManagedFieldsEntry): Set<string> {
  const fields = new Set<string>();
  fromFieldsV1(entry.fieldsV1, [], fields);
  return fields;
}

function displayPath(path: string): string {
  return path
    .split(SEPARATOR)
    .map((elem) => (elem.startsWith('f:') ? `.${elem.slice(2)}` : `[${elem.slice(2)}]`))
    .join('');
}

/**
 * Computes the object after `manager` applies `manifest` to `current` (undefined: the object does
 * not exist yet). Throws a 409 Conflict naming each conflicting field and manager unless `force`.
 */
export function applyServerSide(
  resource: ResourceType,
  current: JsonObject | undefined,
  manifest: JsonObject,
  manager: string,
  force: boolean,
  subresource?: 'status',
): JsonObject {
  const applied = JSON.parse(JSON.stringify(manifest)) as JsonObject;
  if (isObject(applied.metadata)) delete applied.metadata.managedFields;
  // An apply to /status owns only status; an apply to the main resource never owns status when the
  // kind has a status subresource, as the write itself ignores it.
  const statusPath = `f:status`;
  const fields = new Set(
    [...fieldsOf(applied)].filter((p) => {
      const inStatus = p === statusPath || p.startsWith(statusPath + SEPARATOR);
      return subresource === 'status' ? inStatus : !(resource.status && inStatus);
    }),
  );
  const entries = managedFieldsOf(current);
  const isMine = (e: ManagedFieldsEntry): boolean =>
    e.manager === manager && e.operation === 'Apply' && (e.subresource ?? '') === (subresource ?? '');
  const others = entries.filter((e) => !isMine(e));
  const previous = entries.find(isMine);
  const conflicts: { manager: string; path: string }[] = [];
  const keptOthers: ManagedFieldsEntry[] = [];
  for (const entry of others) {
    if (entry.operation !== 'Apply') {
      keptOthers.push(entry);
      continue;
    }
    const owned = ownedBy(entry);
    for (const path of fields) {
      if (!owned.has(path)) continue;
      const elems = path.split(SEPARATOR);
      if (jsonEqual(valueAt(current, elems), valueAt(applied, elems))) continue;
      if (force) owned.delete(path);
      else conflicts.push({ manager: entry.manager, path });
    }
    if (owned.size > 0) keptOthers.push({ ...entry, fieldsV1: toFieldsV1(owned) });
  }
  if (conflicts.length > 0) {
    const name = isObject(applied.metadata) ? String(applied.metadata.name) : '';
    const lines = conflicts.map((c) => `conflict with "${c.manager}": ${displayPath(c.path)}`);
    const message =
      conflicts.length === 1
        ? `Apply failed with 1 conflict: ${lines[0]}`
        : `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n- ')}`;
    throw new ApiError(409, 'Conflict', message, {
      name,
      group: resource.group,
      kind: resource.plural,
      causes: conflicts.map((c) => ({
        reason: 'FieldManagerConflict',
        message: `conflict with "${c.manager}"`,
        field: displayPath(c.path),
      })),
    });
  }
  let result = (current === undefined ? {} : JSON.parse(JSON.stringify(current))) as JsonObject;
  if (previous) {
    const ownedElsewhere = new Set<string>();
    for (const entry of keptOthers)
      if (entry.operation === 'Apply') for (const p of ownedBy(entry)) ownedElsewhere.add(p);
    const removed = [...ownedBy(previous)].filter((p) => !fields.has(p) && !ownedElsewhere.has(p));
    removed.sort((a, b) => a.split(SEPARATOR).length - b.split(SEPARATOR).length);
    const gone: string[] = [];
    for (const path of removed) {
      if (gone.some((prefix) => path.startsWith(prefix + SEPARATOR))) continue;
      removeAt(result, path.split(SEPARATOR));
      gone.push(path);
    }
  }
  result = mergeApplied(result, applied, []) as JsonObject;
  const meta = isObject(result.metadata) ? result.metadata : {};
  result.metadata = meta;
  const entry: ManagedFieldsEntry = {
    manager,
    operation: 'Apply',
    apiVersion: apiVersionOf(resource),
    time: kubeTimestamp(),
    fieldsType: 'FieldsV1',
    fieldsV1: toFieldsV1(fields),
  };
  if (subresource !== undefined) entry.subresource = subresource;
  const unchanged = previous !== undefined && jsonEqual(previous.fieldsV1, entry.fieldsV1);
  meta.managedFields = [...keptOthers, unchanged ? previous : entry];
  return result;
}
