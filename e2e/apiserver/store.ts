/**
 * The in-memory object store: objects by resource, namespace and name, one global resourceVersion
 * counter (like etcd's revision), a bounded event history for watch resume, and watch fan-out.
 *
 * The store knows nothing of REST semantics (defaulting, preconditions, finalizers); the registry
 * does that and hands finished objects here. Stored objects are never mutated after they are put,
 * so lists and watch events can share them and serialise each one once.
 */

import { readFile, rename, writeFile } from 'node:fs/promises';
import { expired } from './errors.ts';
import type { JsonObject } from './patch.ts';

/** The type of a watch event as it appears on the wire. */
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One change to one object, kept in history and delivered to watchers. */
export interface StoreEvent {
  type: WatchEventType;
  /** `<group>/<plural>` of the changed object. */
  resourceKey: string;
  namespace: string;
  object: JsonObject;
  /** The object before the change (MODIFIED and DELETED), for selector transitions. */
  previous: JsonObject | undefined;
  revision: number;
}

/** A live watch registered with {@link ObjectStore.watch}. */
export interface StoreWatcher {
  resourceKey: string;
  /** Only events in this namespace; undefined for all namespaces. */
  namespace: string | undefined;
  deliver(event: StoreEvent): void;
}

/** The metadata fields the store reads. */
interface StoredMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion?: string;
  ownerReferences?: { uid: string }[];
}

/** Where an object lives, found by uid. */
export interface ObjectLocation {
  resourceKey: string;
  namespace: string;
  name: string;
}

function metaOf(object: JsonObject): StoredMeta {
  return object.metadata as StoredMeta;
}

function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** The first index of `sorted` whose key is not below `key` (`strictlyAbove`: above `key`). */
function searchKeys(sorted: readonly string[], key: string, strictlyAbove: boolean): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const probe = sorted[middle]!;
    if (probe < key || (strictlyAbove && probe === key)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Merges two sorted key arrays without duplicates between them. */
function mergeSortedKeys(left: readonly string[], right: readonly string[]): string[] {
  const merged = new Array<string>(left.length + right.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < left.length && j < right.length) merged[k++] = left[i]! < right[j]! ? left[i++]! : right[j++]!;
  while (i < left.length) merged[k++] = left[i++]!;
  while (j < right.length) merged[k++] = right[j++]!;
  return merged;
}

/**
 * The keys of one bucket in etcd order, kept up to date lazily: creates and deletes are only noted,
 * and the next read merges them in. So a write costs O(1), a read after k key changes O(n + k log k),
 * and reading a page from a continue key O(log n) plus the page (sorting the whole bucket per page
 * made paging through 100,000 pods quadratic).
 */
class KeyOrder {
  /** Undefined until the first read; until then writes need not note anything. */
  private sorted: string[] | undefined;
  /** Keys created since the last read that are not in {@link sorted}. */
  private readonly added = new Set<string>();
  /** Keys in {@link sorted} deleted since the last read. */
  private readonly removed = new Set<string>();

  noteCreated(key: string): void {
    if (this.sorted === undefined) return;
    // A key deleted and created again between two reads is still in place in `sorted`.
    if (!this.removed.delete(key)) this.added.add(key);
  }

  noteRemoved(key: string): void {
    if (this.sorted === undefined) return;
    if (!this.added.delete(key)) this.removed.add(key);
  }

  /** Every key of `bucket`, sorted by UTF-16 code units as the `<` operator compares them. */
  keys(bucket: ReadonlyMap<string, JsonObject>): readonly string[] {
    if (this.sorted === undefined) {
      this.sorted = [...bucket.keys()].sort();
    } else if (this.added.size > 0 || this.removed.size > 0) {
      const kept = this.removed.size > 0 ? this.sorted.filter((key) => !this.removed.has(key)) : this.sorted;
      this.sorted = this.added.size > 0 ? mergeSortedKeys(kept, [...this.added].sort()) : kept;
      this.added.clear();
      this.removed.clear();
    }
    return this.sorted;
  }
}

/** What {@link ObjectStore.listPage} reads. */
export interface PageQuery {
  /** Only objects in this namespace; undefined for all. */
  namespace?: string | undefined;
  /** Start after this key (`namespace/name`, exclusive), as a continue token remembers it. */
  after?: string | undefined;
  /**
   * Show the objects as they were at this resourceVersion (a paginated list's later pages, as etcd
   * serves them); undefined for the current state. It must not be older than
   * {@link ObjectStore.oldestResumableRevision}, or objects changed since are missed.
   */
  atRevision?: number | undefined;
  /** At most this many objects; undefined or 0 for all. */
  limit?: number | undefined;
  /** Only objects it accepts (label and field selectors). */
  filter?: ((object: JsonObject) => boolean) | undefined;
}

/** One page read by {@link ObjectStore.listPage}. */
export interface StorePage {
  items: JsonObject[];
  /** True when objects the filter accepts follow the last item. */
  more: boolean;
  /** The last item's key (`namespace/name`) when `more` is true: where a continue token resumes. */
  continueAfter?: string;
  /**
   * How many objects follow the last item: set only when the page has no filter and `more` is true,
   * as kube-apiserver sets remainingItemCount only for lists without selectors.
   */
  remaining?: number;
}

/** The version of the snapshot file format, checked on load. */
const SNAPSHOT_FORMAT = 'portico-apiserver-snapshot/v1';

/** The in-memory object store with watch history. */
export class ObjectStore {
  private revision = 0;
  /** Events at or below this revision are no longer in history. */
  private compactedRevision = 0;
  private history: StoreEvent[] = [];
  private readonly historyWindow: number;
  private readonly buckets = new Map<string, Map<string, JsonObject>>();
  private readonly keyOrders = new Map<string, KeyOrder>();
  private readonly uids = new Map<string, ObjectLocation>();
  private readonly dependentsByOwner = new Map<string, Set<string>>();
  private readonly watchers = new Map<string, Set<StoreWatcher>>();
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  /** Numbers temporary snapshot files, so overlapping saves never write the same file. */
  private snapshotWrites = 0;

  /** @param historyWindow how many events to keep for watch resume; older resourceVersions get 410. */
  constructor(historyWindow = 10_000) {
    this.historyWindow = Math.max(1, historyWindow);
  }

  /** The current global resourceVersion as a number. */
  currentRevision(): number {
    return this.revision;
  }

  /** The oldest resourceVersion a watch can resume from. */
  oldestResumableRevision(): number {
    return this.compactedRevision;
  }

  /** One object, or undefined. */
  get(resourceKey: string, namespace: string, name: string): JsonObject | undefined {
    return this.buckets.get(resourceKey)?.get(objectKey(namespace, name));
  }

  /** The location of the object with this uid, if it exists. */
  locate(uid: string): ObjectLocation | undefined {
    return this.uids.get(uid);
  }

  /** Uids of the objects that list `ownerUid` in their ownerReferences. */
  dependentsOf(ownerUid: string): string[] {
    return [...(this.dependentsByOwner.get(ownerUid) ?? [])];
  }

  /** All objects of a resource (in one namespace, or all), sorted by namespace then name like etcd keys. */
  list(resourceKey: string, namespace?: string): JsonObject[] {
    return this.listPage(resourceKey, { namespace }).items;
  }

  /**
   * One page of a resource's objects in key order (namespace, then name, like etcd keys): from
   * after a key, optionally as they were at an older revision, filtered and limited. Costs the
   * page's length plus the keys skipped by the filter, and the history since `atRevision`.
   */
  listPage(resourceKey: string, query: PageQuery): StorePage {
    const bucket = this.buckets.get(resourceKey);
    if (!bucket) return { items: [], more: false };
    const sorted = this.keyOrderOf(resourceKey).keys(bucket);
    const { namespace, after, filter } = query;
    // Keys are `namespace/name`; '0' is the character after '/', so a namespace's keys sort
    // between `<namespace>/` and `<namespace>0`.
    const low = namespace === undefined ? 0 : searchKeys(sorted, `${namespace}/`, false);
    const high = namespace === undefined ? sorted.length : searchKeys(sorted, `${namespace}0`, false);
    const inRange = (key: string) =>
      (namespace === undefined || key.startsWith(`${namespace}/`)) && (after === undefined || key > after);
    // Objects changed since the snapshot's revision, with what they were then (undefined: absent).
    const then = query.atRevision === undefined ? undefined : this.stateAt(resourceKey, query.atRevision);
    const changedKeys = then === undefined ? [] : [...then.keys()].filter(inRange).sort();
    const limit = query.limit !== undefined && query.limit > 0 ? query.limit : Number.POSITIVE_INFINITY;
    const items: JsonObject[] = [];
    let i = after === undefined ? low : Math.max(low, searchKeys(sorted, after, true));
    let j = 0;
    let lastKey: string | undefined;
    let more = false;
    while (i < high || j < changedKeys.length) {
      const current = i < high ? sorted[i]! : undefined;
      const changed = j < changedKeys.length ? changedKeys[j]! : undefined;
      let key: string;
      let object: JsonObject | undefined;
      if (changed !== undefined && (current === undefined || changed <= current)) {
        key = changed;
        object = then!.get(changed);
        j++;
        if (current === changed) i++;
      } else {
        key = current!;
        object = bucket.get(key);
        i++;
      }
      if (object === undefined || (filter !== undefined && !filter(object))) continue;
      if (items.length === limit) {
        more = true;
        break;
      }
      items.push(object);
      lastKey = key;
    }
    const page: StorePage = { items, more };
    if (more && lastKey !== undefined) {
      page.continueAfter = lastKey;
      if (filter === undefined) {
        let remaining = high - searchKeys(sorted, lastKey, true);
        for (const key of changedKeys) {
          if (key <= lastKey) continue;
          remaining += (then!.get(key) === undefined ? 0 : 1) - (bucket.has(key) ? 1 : 0);
        }
        page.remaining = remaining;
      }
    }
    return page;
  }

  /**
   * The objects of a resource that changed after `revision`, each as it was at `revision`
   * (undefined for objects created since), read back from the event history.
   */
  private stateAt(resourceKey: string, revision: number): Map<string, JsonObject | undefined> {
    const then = new Map<string, JsonObject | undefined>();
    let low = 0;
    let high = this.history.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.history[middle]!.revision <= revision) low = middle + 1;
      else high = middle;
    }
    for (let n = low; n < this.history.length; n++) {
      const event = this.history[n]!;
      if (event.resourceKey !== resourceKey) continue;
      const meta = metaOf(event.object);
      const key = objectKey(meta.namespace ?? '', meta.name);
      // The first change after the revision knows the state before it.
      if (!then.has(key)) then.set(key, event.previous);
    }
    return then;
  }

  private keyOrderOf(resourceKey: string): KeyOrder {
    let order = this.keyOrders.get(resourceKey);
    if (order === undefined) {
      order = new KeyOrder();
      this.keyOrders.set(resourceKey, order);
    }
    return order;
  }

  /** Number of objects of a resource, in one namespace or all. */
  count(resourceKey: string, namespace?: string): number {
    const bucket = this.buckets.get(resourceKey);
    if (!bucket) return 0;
    if (namespace === undefined) return bucket.size;
    let n = 0;
    for (const object of bucket.values()) if ((metaOf(object).namespace ?? '') === namespace) n++;
    return n;
  }

  /** Resource keys that hold at least one object. */
  resourceKeys(): string[] {
    return [...this.buckets.keys()].filter((k) => (this.buckets.get(k)?.size ?? 0) > 0);
  }

  /**
   * Stores a created or updated object: gives it the next resourceVersion, records the event and
   * delivers it. Returns the stored object, which the caller must not modify.
   */
  put(resourceKey: string, object: JsonObject): JsonObject {
    const meta = metaOf(object);
    const namespace = meta.namespace ?? '';
    const key = objectKey(namespace, meta.name);
    let bucket = this.buckets.get(resourceKey);
    if (!bucket) {
      bucket = new Map();
      this.buckets.set(resourceKey, bucket);
    }
    const previous = bucket.get(key);
    this.revision++;
    const stored = {
      ...object,
      metadata: { ...(object.metadata as JsonObject), resourceVersion: String(this.revision) },
    };
    bucket.set(key, stored);
    if (previous) this.unindex(previous);
    else this.keyOrderOf(resourceKey).noteCreated(key);
    this.index(resourceKey, stored);
    this.record({
      type: previous ? 'MODIFIED' : 'ADDED',
      resourceKey,
      namespace,
      object: stored,
      previous,
      revision: this.revision,
    });
    return stored;
  }

  /** Removes an object; the DELETED event carries it with the deletion's resourceVersion. */
  remove(resourceKey: string, namespace: string, name: string): JsonObject | undefined {
    const bucket = this.buckets.get(resourceKey);
    const key = objectKey(namespace, name);
    const previous = bucket?.get(key);
    if (!bucket || !previous) return undefined;
    bucket.delete(key);
    this.keyOrderOf(resourceKey).noteRemoved(key);
    this.unindex(previous);
    this.revision++;
    const deleted = {
      ...previous,
      metadata: { ...(previous.metadata as JsonObject), resourceVersion: String(this.revision) },
    };
    this.record({
      type: 'DELETED',
      resourceKey,
      namespace,
      object: deleted,
      previous,
      revision: this.revision,
    });
    return deleted;
  }

  /**
   * Registers a watcher. With `fromRevision`, first replays the history after it (410 Expired when
   * that history is gone); without, only later events are delivered.
   */
  watch(watcher: StoreWatcher, fromRevision?: number): () => void {
    if (fromRevision !== undefined) {
      if (fromRevision < this.compactedRevision) {
        throw expired(`too old resource version: ${fromRevision} (${this.compactedRevision})`);
      }
      for (const event of this.history) {
        if (event.revision <= fromRevision) continue;
        if (event.resourceKey !== watcher.resourceKey) continue;
        if (watcher.namespace !== undefined && event.namespace !== watcher.namespace) continue;
        watcher.deliver(event);
      }
    }
    let set = this.watchers.get(watcher.resourceKey);
    if (!set) {
      set = new Set();
      this.watchers.set(watcher.resourceKey, set);
    }
    set.add(watcher);
    return () => {
      this.watchers.get(watcher.resourceKey)?.delete(watcher);
    };
  }

  /** Calls `listener` synchronously for every event of every resource (garbage collector, CRDs). */
  onEvent(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Forgets all history, so any watch or continue token from before now gets 410. */
  compact(): void {
    this.compactedRevision = this.revision;
    this.history = [];
  }

  /** Writes all objects and the revision counter to a file (atomically, through a rename). */
  async saveSnapshot(path: string): Promise<void> {
    const objects: Record<string, JsonObject[]> = {};
    for (const [resourceKey, bucket] of this.buckets) {
      if (bucket.size > 0) objects[resourceKey] = [...bucket.values()];
    }
    const body = JSON.stringify({ format: SNAPSHOT_FORMAT, revision: this.revision, objects });
    const temporary = `${path}.${process.pid}.${++this.snapshotWrites}.tmp`;
    await writeFile(temporary, body);
    await rename(temporary, path);
  }

  /** Loads a snapshot written by {@link saveSnapshot}; returns false when the file does not exist. */
  async loadSnapshot(path: string): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    const parsed = JSON.parse(text) as {
      format?: string;
      revision: number;
      objects: Record<string, JsonObject[]>;
    };
    if (parsed.format !== SNAPSHOT_FORMAT) throw new Error(`${path}: not a ${SNAPSHOT_FORMAT} file`);
    this.buckets.clear();
    this.keyOrders.clear();
    this.uids.clear();
    this.dependentsByOwner.clear();
    for (const [resourceKey, objects] of Object.entries(parsed.objects)) {
      const bucket = new Map<string, JsonObject>();
      for (const object of objects) {
        const meta = metaOf(object);
        bucket.set(objectKey(meta.namespace ?? '', meta.name), object);
        this.index(resourceKey, object);
      }
      this.buckets.set(resourceKey, bucket);
    }
    this.revision = parsed.revision;
    this.compactedRevision = parsed.revision;
    this.history = [];
    return true;
  }

  private record(event: StoreEvent): void {
    this.history.push(event);
    if (this.history.length > this.historyWindow * 2) {
      const dropped = this.history.length - this.historyWindow;
      this.compactedRevision = this.history[dropped - 1]!.revision;
      this.history = this.history.slice(dropped);
    } else if (this.history.length > this.historyWindow) {
      this.compactedRevision = Math.max(
        this.compactedRevision,
        this.history[this.history.length - this.historyWindow - 1]!.revision,
      );
    }
    const set = this.watchers.get(event.resourceKey);
    if (set) {
      for (const watcher of set) {
        if (watcher.namespace === undefined || watcher.namespace === event.namespace) watcher.deliver(event);
      }
    }
    for (const listener of this.listeners) listener(event);
  }

  private index(resourceKey: string, object: JsonObject): void {
    const meta = metaOf(object);
    this.uids.set(meta.uid, { resourceKey, namespace: meta.namespace ?? '', name: meta.name });
    for (const ref of meta.ownerReferences ?? []) {
      let set = this.dependentsByOwner.get(ref.uid);
      if (!set) {
        set = new Set();
        this.dependentsByOwner.set(ref.uid, set);
      }
      set.add(meta.uid);
    }
  }

  private unindex(object: JsonObject): void {
    const meta = metaOf(object);
    this.uids.delete(meta.uid);
    for (const ref of meta.ownerReferences ?? []) {
      const set = this.dependentsByOwner.get(ref.uid);
      set?.delete(meta.uid);
      if (set?.size === 0) this.dependentsByOwner.delete(ref.uid);
    }
  }
}
