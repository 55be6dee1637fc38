/**
 * The patch formats the API server accepts: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
 * strategic merge patch with the merge keys of the served core kinds.
 *
 * Every function returns a new document and leaves its inputs untouched, because the store hands out
 * shared objects and a failed patch must not leave a half-applied change behind.
 */

/** A JSON object (string keys, unknown values). */
export type JsonObject = Record<string, unknown>;

/** True for plain JSON objects (not arrays, not null). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

/** Structural equality of two JSON values (key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => jsonEqual(item, b[i]));
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

function parsePointer(pointer: unknown): string[] {
  if (typeof pointer !== 'string')
    throw new Error(`invalid JSON pointer ${JSON.stringify(pointer)}: not a string`);
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`invalid JSON pointer "${pointer}": must start with "/"`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function arrayIndex(container: unknown[], token: string, pointer: string, allowEnd: boolean): number {
  if (allowEnd && token === '-') return container.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) {
    throw new Error(`invalid array index "${token}" in path "${pointer}"`);
  }
  const index = Number(token);
  const limit = allowEnd ? container.length : container.length - 1;
  if (index > limit) throw new Error(`array index ${index} out of range in path "${pointer}"`);
  return index;
}

/** Walks to the parent of the pointer's last token; the parent must exist. */
function resolveParent(doc: unknown, tokens: string[], pointer: string): unknown {
  let current = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(current)) {
      current = current[arrayIndex(current, token, pointer, false)];
    } else if (isObject(current) && Object.hasOwn(current, token)) {
      current = current[token];
    } else {
      throw new Error(`path "${pointer}" does not exist: missing "${token}"`);
    }
  }
  return current;
}

function getAt(doc: unknown, pointer: unknown): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return doc;
  const parent = resolveParent(doc, tokens, pointer as string);
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) return parent[arrayIndex(parent, last, pointer as string, false)];
  if (isObject(parent) && Object.hasOwn(parent, last)) return parent[last];
  throw new Error(`path "${pointer}" does not exist`);
}

function removeAt(doc: unknown, pointer: unknown): { doc: unknown; removed: unknown } {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return { doc: undefined, removed: doc };
  const parent = resolveParent(doc, tokens, pointer as string);
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) {
    const [removed] = parent.splice(arrayIndex(parent, last, pointer as string, false), 1);
    return { doc, removed };
  }
  if (isObject(parent) && Object.hasOwn(parent, last)) {
    const removed = parent[last];
    delete parent[last];
    return { doc, removed };
  }
  throw new Error(`unable to remove nonexistent key "${last}": path "${pointer}" does not exist`);
}

function addAt(doc: unknown, pointer: unknown, value: unknown, replace: boolean): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return value;
  const parent = resolveParent(doc, tokens, pointer as string);
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) {
    if (replace) parent[arrayIndex(parent, last, pointer as string, false)] = value;
    else parent.splice(arrayIndex(parent, last, pointer as string, true), 0, value);
    return doc;
  }
  if (isObject(parent)) {
    if (replace && !Object.hasOwn(parent, last)) {
      throw new Error(`replace operation does not apply: doc is missing key: ${pointer}`);
    }
    parent[last] = value;
    return doc;
  }
  throw new Error(`path "${pointer}" does not exist: its parent is not an object or array`);
}

/**
 * Applies an RFC 6902 JSON patch. Throws an Error naming the operation and path when an operation
 * is malformed, its path does not exist or a `test` fails; the input document is never modified.
 */
export function applyJsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new Error('a JSON patch must be an array of operations');
  let result = clone(doc);
  ops.forEach((op, i) => {
    if (!isObject(op)) throw new Error(`JSON patch operation ${i} is not an object`);
    const where = `operation ${i} (${String(op.op)} ${String(op.path)})`;
    try {
      switch (op.op) {
        case 'add':
          if (!Object.hasOwn(op, 'value')) throw new Error('missing "value"');
          result = addAt(result, op.path, clone(op.value), false);
          break;
        case 'replace':
          if (!Object.hasOwn(op, 'value')) throw new Error('missing "value"');
          getAt(result, op.path);
          result = addAt(result, op.path, clone(op.value), true);
          break;
        case 'remove':
          result = removeAt(result, op.path).doc;
          break;
        case 'move': {
          const from = parsePointer(op.from);
          const to = parsePointer(op.path);
          if (to.length > from.length && from.every((t, j) => to[j] === t)) {
            throw new Error(`cannot move "${op.from}" into its own child "${op.path}"`);
          }
          const removed = removeAt(result, op.from);
          result = addAt(removed.doc, op.path, removed.removed, false);
          break;
        }
        case 'copy':
          result = addAt(result, op.path, clone(getAt(result, op.from)), false);
          break;
        case 'test':
          if (!jsonEqual(getAt(result, op.path), op.value)) {
            throw new Error(`testing value ${JSON.stringify(op.value)} failed`);
          }
          break;
        default:
          throw new Error(`unknown operation "${String(op.op)}"`);
      }
    } catch (err) {
      throw new Error(`JSON patch ${where}: ${(err as Error).message}`);
    }
  });
  return result;
}

/** Applies an RFC 7386 JSON merge patch: objects merge, null deletes, everything else replaces. */
export function applyMergePatch(doc: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(doc) ? clone(doc) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

/**
 * Merge keys of the lists in core kinds, by the list's field name and, where a name is ambiguous,
 * its parent's field name (`containers.ports` merges by containerPort, a Service's `spec.ports` by port).
 */
const MERGE_KEYS: Record<string, string> = {
  'containers.ports': 'containerPort',
  'initContainers.ports': 'containerPort',
  'ephemeralContainers.ports': 'containerPort',
  'spec.ports': 'port',
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  imagePullSecrets: 'name',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
  conditions: 'type',
  'status.addresses': 'type',
  podIPs: 'ip',
  hostIPs: 'ip',
  ownerReferences: 'uid',
  secrets: 'name',
};

/** Lists of scalars that strategic merge patch merges as sets instead of replacing. */
const MERGED_SCALAR_LISTS = new Set(['finalizers']);

/** The merge key of the list at `path` (field names only), or undefined when the list is replaced whole. */
export function strategicMergeKey(path: readonly string[]): string | undefined {
  const field = path[path.length - 1];
  if (field === undefined) return undefined;
  const parent = path[path.length - 2];
  if (parent !== undefined) {
    const qualified = MERGE_KEYS[`${parent}.${field}`];
    if (qualified !== undefined) return qualified;
    if (field === 'ports' || field === 'addresses') return undefined;
  }
  return MERGE_KEYS[field];
}

/** Whether the scalar list at `path` merges as a set under strategic merge patch. */
export function isMergedScalarList(path: readonly string[]): boolean {
  return MERGED_SCALAR_LISTS.has(path[path.length - 1] ?? '');
}

const SET_ORDER = '$setElementOrder/';
const DELETE_FROM_PRIMITIVE = '$deleteFromPrimitiveList/';

function mergeList(path: string[], current: unknown, patch: unknown[]): unknown[] {
  const key = strategicMergeKey(path);
  const base = Array.isArray(current) ? clone(current) : [];
  if (patch.some((item) => isObject(item) && item.$patch === 'replace')) {
    return patch.filter((item) => !(isObject(item) && item.$patch === 'replace')).map(clone);
  }
  if (key !== undefined) {
    for (const item of patch) {
      if (!isObject(item)) throw new Error(`${path.join('.')}: expected objects with merge key "${key}"`);
      const index = base.findIndex((existing) => isObject(existing) && jsonEqual(existing[key], item[key]));
      if (item.$patch === 'delete') {
        if (index >= 0) base.splice(index, 1);
      } else if (index >= 0) {
        base[index] = strategicMergeAt(path, base[index], item);
      } else {
        base.push(strategicMergeAt(path, undefined, item));
      }
    }
    return base;
  }
  if (isMergedScalarList(path)) {
    for (const item of patch) if (!base.some((existing) => jsonEqual(existing, item))) base.push(clone(item));
    return base;
  }
  return patch.map(clone);
}

function orderBy(list: unknown[], order: unknown[], key: string | undefined): unknown[] {
  const rank = (item: unknown): number => {
    const i = order.findIndex((o) =>
      key !== undefined && isObject(item) && isObject(o) ? jsonEqual(o[key], item[key]) : jsonEqual(o, item),
    );
    return i < 0 ? order.length : i;
  };
  return list
    .map((item, i) => ({ item, i, r: rank(item) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((e) => e.item);
}

function strategicMergeAt(path: string[], current: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _directive, ...rest } = patch;
    return strategicMergeAt(path, undefined, rest);
  }
  if (patch.$patch === 'delete') return undefined;
  const result: JsonObject = isObject(current) ? clone(current) : {};
  const retainKeys = patch.$retainKeys;
  for (const [field, value] of Object.entries(patch)) {
    if (field === '$patch' || field === '$retainKeys' || field.startsWith(SET_ORDER)) continue;
    if (field.startsWith(DELETE_FROM_PRIMITIVE)) {
      const target = field.slice(DELETE_FROM_PRIMITIVE.length);
      const existing = result[target];
      if (Array.isArray(existing) && Array.isArray(value)) {
        result[target] = existing.filter((item) => !value.some((v) => jsonEqual(v, item)));
      }
      continue;
    }
    const childPath = [...path, field];
    if (value === null) delete result[field];
    else if (Array.isArray(value)) result[field] = mergeList(childPath, result[field], value);
    else {
      const merged = strategicMergeAt(childPath, result[field], value);
      if (merged === undefined) delete result[field];
      else result[field] = merged;
    }
  }
  for (const [field, order] of Object.entries(patch)) {
    if (!field.startsWith(SET_ORDER) || !Array.isArray(order)) continue;
    const target = field.slice(SET_ORDER.length);
    const list = result[target];
    if (Array.isArray(list)) result[target] = orderBy(list, order, strategicMergeKey([...path, target]));
  }
  if (Array.isArray(retainKeys)) {
    for (const field of Object.keys(result)) if (!retainKeys.includes(field)) delete result[field];
  }
  return result;
}

/**
 * Applies a strategic merge patch the way kube-apiserver does for core kinds: lists with a merge key
 * merge element by element (`$patch: delete` removes one), other lists are replaced, `$patch: replace`
 * replaces a map or list, `$retainKeys`, `$setElementOrder` and `$deleteFromPrimitiveList` are honoured.
 */
export function applyStrategicMergePatch(doc: unknown, patch: unknown): unknown {
  if (!isObject(patch)) throw new Error('a strategic merge patch must be a JSON object');
  return strategicMergeAt([], doc, patch) ?? {};
}
