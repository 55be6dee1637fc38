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
    const bucket = this.buckets.get(resourceKey);
    if (!bucket) return [];
    const entries: [string, JsonObject][] = [];
    for (const [key, object] of bucket) {
      if (namespace === undefined || (metaOf(object).namespace ?? '') === namespace)
        entries.push([key, object]);
    }
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return entries.map((e) => e[1]);
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
