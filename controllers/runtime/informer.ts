/**
 * Typed, indexed informer caches on top of `@kubernetes/client-node`'s ListWatch.
 *
 * ListWatch does the protocol work: list, watch from the list's resourceVersion, resume from the
 * last seen resourceVersion after a clean close, clear the resourceVersion and relist on 410 Gone,
 * and report objects that vanished across a relist as deletes. What it does not do, and this
 * module adds:
 * - it gives up after any other error (a 500 or 429 on list or watch, a connection reset): it
 *   reports the error once and stops. {@link Informer} restarts it with capped exponential
 *   backoff, and the restart resumes from the last resourceVersion it had seen;
 * - it has no notion of "synced", no secondary indexes and no resync;
 * - it calls handlers with the new object only; reconcilers that need the previous state of an
 *   update (a pod that changed its label) get it here.
 */
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import { apiStatusCode, describeError, getJson } from './kube.ts';
import { errorFields, type Logger } from './logging.ts';
import { getOrCreateCounter, getOrCreateGauge, METRIC_PREFIX } from './metrics.ts';

/**
 * Computes the values an object is indexed under. Returning several values puts the object in
 * several buckets (an EndpointSlice under each of its Services); returning none leaves it out.
 */
export type IndexFunction<T> = (obj: T) => readonly string[];

/**
 * Callbacks for cache changes. They run synchronously inside the watch stream, after the cache
 * already reflects the change, so they must be cheap: the intended body is "enqueue a key".
 */
export interface InformerEventHandler<T> {
  /** A new object (first list, watch ADDED, or an object that appeared across a relist). */
  onAdd?(obj: T): void;
  /**
   * A changed object. On a periodic resync `oldObj === newObj`; a handler that only cares about
   * real changes compares resourceVersions.
   */
  onUpdate?(oldObj: T, newObj: T): void;
  /** A deleted object, or one that was missing from a relist after the watch had fallen behind. */
  onDelete?(obj: T): void;
}

/** Backoff of restarts after list/watch errors. */
export interface RestartBackoff {
  /** Delay before the first restart after a failure. */
  initialMs: number;
  /** Ceiling of the doubling delay. */
  maxMs: number;
}

/** The informer parts a {@link Manager}-like owner needs: lifecycle and readiness. */
export interface ManagedInformer {
  /** A short name for logs and metrics, e.g. `services`. */
  readonly name: string;
  /** Starts listing and watching; resolves at once, the first list completes in the background. */
  start(): void;
  /** Stops watching and cancels pending restarts and resyncs. */
  stop(): Promise<void>;
  /** True once the first list has been applied to the cache. */
  hasSynced(): boolean;
  /** Resolves when {@link hasSynced} becomes true; rejects if `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<void>;
}

/** Options of {@link Informer}. */
export interface InformerOptions<T extends KubernetesObject> {
  /** Credentials and server for list and watch. */
  kubeConfig: KubeConfig;
  /**
   * The collection's URL path, e.g. `/api/v1/services`, `/api/v1/namespaces/default/pods` or
   * `/apis/discovery.k8s.io/v1/endpointslices`. Both list and watch use it.
   */
  path: string;
  /** Name for logs and metrics; defaults to the last segment of `path`. */
  name?: string;
  /** Server-side label selector for list and watch. */
  labelSelector?: string;
  /** Server-side field selector for list and watch. */
  fieldSelector?: string;
  /** Extra indexes beside the built-in {@link NAMESPACE_INDEX}, queried with {@link Informer.byIndex}. */
  indexers?: Record<string, IndexFunction<T>>;
  /**
   * When set, every cached object is re-delivered to the update handlers this often, so a
   * reconcile that was dropped (terminal error, a bug) is retried eventually.
   */
  resyncPeriodMs?: number;
  /** Restart backoff after list/watch failures; defaults to 500 ms doubling to 30 s. */
  restartBackoff?: RestartBackoff;
  /**
   * Overrides the list call; by default the informer GETs `path` itself, page by page (see
   * {@link listInPages}), so that listed objects have the same plain-JSON shape as watched ones.
   */
  list?: () => Promise<KubernetesListObject<T>>;
  /** Objects per page of the default list; defaults to {@link LIST_PAGE_SIZE}. */
  listPageSize?: number;
  /**
   * Applied to every listed and watched object before anything keeps it (client-go's
   * `SetTransform`): returns the part of the object its readers use, so a cache of 100,000 pods
   * does not hold 100,000 pod specs nobody reads. It must keep `metadata.name`, `namespace` and
   * `resourceVersion`; it may modify and return its argument, which nothing else holds.
   */
  transform?: (obj: T) => T;
  /** Receives restarts and handler failures. */
  logger: Logger;
}

/**
 * Objects per page of an informer's list, as client-go's reflector pages. Pages keep each answer
 * and each JSON.parse small (a single list of 100,000 pods is some 300 MB of JSON) and let the
 * server start sending before it has encoded the whole collection.
 */
export const LIST_PAGE_SIZE = 500;

/** Name of the built-in index of every informer: objects by `metadata.namespace` ('' for cluster-scoped). */
export const NAMESPACE_INDEX = 'namespace';

const DEFAULT_BACKOFF: RestartBackoff = { initialMs: 500, maxMs: 30_000 };

/**
 * The cache key of an object: `namespace/name`, or just `name` for cluster-scoped objects. The
 * same format the work queue and reconcilers use.
 */
export function objectKey(obj: KubernetesObject): string {
  const namespace = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return namespace ? `${namespace}/${name}` : name;
}

/** Splits a key made by {@link objectKey}; `namespace` is '' for cluster-scoped keys. */
export function splitObjectKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return slash === -1
    ? { namespace: '', name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** The delay before restart number `attempt` (1-based): doubling from `initialMs`, capped at `maxMs`. */
export function restartDelayMs(attempt: number, backoff: RestartBackoff): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  return Math.min(backoff.initialMs * 2 ** exponent, backoff.maxMs);
}

/** `values` without repeats; index functions mostly return one value, which needs no Set. */
function distinct(values: readonly string[]): readonly string[] {
  return values.length < 2 ? values : [...new Set(values)];
}

function sameValues(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let n = 0; n < a.length; n++) if (a[n] !== b[n]) return false;
  return true;
}

function removeFromBuckets(index: Map<string, Set<string>>, values: readonly string[], key: string): void {
  for (const value of values) {
    const keys = index.get(value);
    keys?.delete(key);
    if (keys?.size === 0) index.delete(value);
  }
}

/**
 * An object store keyed by {@link objectKey} with any number of secondary indexes. Separate from
 * {@link Informer} so the indexing logic is testable without a server.
 */
export class IndexedStore<T extends KubernetesObject> {
  readonly #objects = new Map<string, T>();
  readonly #indexNames: string[];
  readonly #indexFunctions: IndexFunction<T>[];
  /** Per index, in the order of {@link #indexNames}: index value → keys. */
  readonly #indexes: Map<string, Set<string>>[];
  /**
   * key → the values the object is filed under, per index, so removal needs no recomputation and
   * an update that leaves an index value alone (a pod's status change) touches no bucket.
   */
  readonly #filedUnder = new Map<string, (readonly string[])[]>();

  /** @param indexers index functions by name; {@link NAMESPACE_INDEX} is always added. */
  constructor(indexers: Record<string, IndexFunction<T>> = {}) {
    const all = new Map(Object.entries(indexers));
    all.set(NAMESPACE_INDEX, (obj) => [obj.metadata?.namespace ?? '']);
    this.#indexNames = [...all.keys()];
    this.#indexFunctions = [...all.values()];
    this.#indexes = this.#indexNames.map(() => new Map());
  }

  /** Stores `obj` under its key, replacing (and re-indexing) any previous version. Returns the previous one. */
  upsert(obj: T): T | undefined {
    const key = objectKey(obj);
    const previous = this.#objects.get(key);
    this.#objects.set(key, obj);
    const before = this.#filedUnder.get(key);
    const after = this.#indexFunctions.map((indexFunction) => distinct(indexFunction(obj)));
    this.#filedUnder.set(key, after);
    for (let n = 0; n < after.length; n++) {
      const old = before?.[n];
      const values = after[n]!;
      if (old !== undefined && sameValues(old, values)) continue;
      const index = this.#indexes[n]!;
      if (old !== undefined) removeFromBuckets(index, old, key);
      for (const value of values) {
        let keys = index.get(value);
        if (keys === undefined) {
          keys = new Set();
          index.set(value, keys);
        }
        keys.add(key);
      }
    }
    return previous;
  }

  /** Removes the object stored under `key`; returns it, or undefined if there was none. */
  remove(key: string): T | undefined {
    const previous = this.#objects.get(key);
    if (previous === undefined) {
      return undefined;
    }
    const filed = this.#filedUnder.get(key) ?? [];
    for (let n = 0; n < filed.length; n++) removeFromBuckets(this.#indexes[n]!, filed[n]!, key);
    this.#filedUnder.delete(key);
    this.#objects.delete(key);
    return previous;
  }

  /** The object stored under `key`, in O(1). */
  get(key: string): T | undefined {
    return this.#objects.get(key);
  }

  /** Every stored object, in insertion order. */
  list(): T[] {
    return [...this.#objects.values()];
  }

  /** Every stored key. */
  keys(): string[] {
    return [...this.#objects.keys()];
  }

  /** Number of stored objects. */
  get size(): number {
    return this.#objects.size;
  }

  /** Objects filed under `value` in index `indexName`. Throws for an index that was never declared. */
  byIndex(indexName: string, value: string): T[] {
    const position = this.#indexNames.indexOf(indexName);
    if (position === -1) {
      const known = this.#indexNames.map((name) => `"${name}"`).join(', ');
      throw new Error(`index ${JSON.stringify(indexName)} does not exist: declared indexes: ${known}`);
    }
    const objects: T[] = [];
    for (const key of this.#indexes[position]!.get(value) ?? []) objects.push(this.#objects.get(key)!);
    return objects;
  }

  /** The distinct values index `indexName` currently holds objects under. */
  indexValues(indexName: string): string[] {
    const position = this.#indexNames.indexOf(indexName);
    return position === -1 ? [] : [...this.#indexes[position]!.keys()];
  }
}

/**
 * Lists omit `kind` and `apiVersion` on their items while watch events carry them; fill them in
 * from the list's own (`ConfigMapList` → `ConfigMap`) so every cached object names its type, which
 * Events' involvedObject needs.
 */
export function withItemKinds<T extends KubernetesObject>(
  list: KubernetesListObject<T>,
): KubernetesListObject<T> {
  const kind = list.kind?.replace(/List$/, '');
  // Items that already name their type (the local API server's do) are kept as they are, rather
  // than copying each of 100,000 pods to set two fields it has.
  const items = (list.items ?? []).map((item) =>
    item.kind !== undefined && item.apiVersion !== undefined
      ? item
      : { apiVersion: list.apiVersion, kind, ...item },
  );
  return { ...list, items };
}

/** A list answer as plain JSON: `continue` is the wire name of the typed client's `_continue`. */
interface ListPageJson<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

/** Label and field selectors of a list, as query parameters. */
export interface ListSelectors {
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
}

/**
 * Lists a whole collection in pages of `pageSize`, following continue tokens, and returns it as one
 * list with the resourceVersion the pages were served at. When a continue token has expired (410,
 * the server's history moved past the first page's resourceVersion) it falls back to one
 * unpaginated list, as client-go's pager does, rather than failing the whole list.
 */
export async function listInPages<T extends KubernetesObject>(
  kubeConfig: KubeConfig,
  path: string,
  selectors: ListSelectors,
  pageSize: number = LIST_PAGE_SIZE,
): Promise<KubernetesListObject<T>> {
  const items: T[] = [];
  let page: ListPageJson<T>;
  let token: string | undefined;
  do {
    try {
      page = (await getJson(kubeConfig, path, {
        ...selectors,
        limit: String(pageSize),
        continue: token,
      })) as ListPageJson<T>;
    } catch (error) {
      if (token === undefined || apiStatusCode(error) !== 410) throw error;
      return withItemKinds((await getJson(kubeConfig, path, { ...selectors })) as KubernetesListObject<T>);
    }
    for (const item of withItemKinds(page as KubernetesListObject<T>).items) items.push(item);
    token = page.metadata?.continue || undefined;
  } while (token !== undefined);
  return {
    apiVersion: page.apiVersion ?? '',
    kind: page.kind ?? '',
    metadata: { resourceVersion: page.metadata?.resourceVersion },
    items,
  };
}

/**
 * Watch that tells the informer when ListWatch opens a watch. ListWatch applies a list's items to
 * its cache synchronously right before it opens the watch that follows, so the first call means
 * "the first list is in the cache", which is the informer's sync point.
 */
class ObservedWatch<T> extends Watch {
  readonly #onWatchStart: () => void;
  readonly #transform: ((obj: T) => T) | undefined;

  constructor(kubeConfig: KubeConfig, onWatchStart: () => void, transform: ((obj: T) => T) | undefined) {
    super(kubeConfig);
    this.#onWatchStart = onWatchStart;
    this.#transform = transform;
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    this.#onWatchStart();
    const transform = this.#transform;
    // Bookmarks and errors are not objects of the collection; ListWatch reads them as they come.
    const transformed =
      transform === undefined
        ? callback
        : (phase: string, apiObj: unknown, watchObj?: unknown) =>
            callback(
              phase,
              phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED'
                ? transform(apiObj as T)
                : apiObj,
              watchObj,
            );
    return super.watch(path, queryParams, transformed, done);
  }
}

const informerRestarts = () =>
  getOrCreateCounter({
    name: `${METRIC_PREFIX}informer_restarts_total`,
    help: 'List/watch restarts after errors (5xx, 429, dropped connections), by informer.',
    labelNames: ['informer'],
  });

const informerObjects = () =>
  getOrCreateGauge({
    name: `${METRIC_PREFIX}informer_cached_objects`,
    help: 'Objects in the informer cache, by informer.',
    labelNames: ['informer'],
  });

/**
 * A typed, indexed cache of one collection kept current by list+watch, with change handlers.
 * Reads (`get`, `list`, `byIndex`) never touch the network.
 */
export class Informer<T extends KubernetesObject> implements ManagedInformer {
  /** Name for logs and metrics. */
  readonly name: string;
  readonly #store: IndexedStore<T>;
  readonly #handlers: InformerEventHandler<T>[] = [];
  readonly #listWatch: ListWatch<T>;
  readonly #logger: Logger;
  readonly #backoff: RestartBackoff;
  readonly #resyncPeriodMs: number | undefined;
  #synced = false;
  #syncWaiters: (() => void)[] = [];
  #running = false;
  #failures = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;

  constructor(options: InformerOptions<T>) {
    this.name = options.name ?? options.path.split('/').filter(Boolean).at(-1) ?? options.path;
    this.#store = new IndexedStore(options.indexers);
    this.#logger = options.logger.child({ informer: this.name });
    this.#backoff = options.restartBackoff ?? DEFAULT_BACKOFF;
    this.#resyncPeriodMs = options.resyncPeriodMs;
    const { kubeConfig, path, labelSelector, fieldSelector } = options;
    const list =
      options.list ??
      (() => listInPages<T>(kubeConfig, path, { labelSelector, fieldSelector }, options.listPageSize));
    const { transform } = options;
    const countedList = async () => {
      const result = await list();
      this.#failures = 0;
      if (transform !== undefined && result.items !== undefined) result.items = result.items.map(transform);
      return result;
    };
    const watch = new ObservedWatch<T>(kubeConfig, () => this.#markSynced(), transform);
    this.#listWatch = new ListWatch<T>(path, watch, countedList, false, labelSelector, fieldSelector);
    this.#listWatch.on('add', (obj) => this.#applyUpsert(obj));
    this.#listWatch.on('update', (obj) => this.#applyUpsert(obj));
    this.#listWatch.on('delete', (obj) => this.#applyDelete(obj));
    this.#listWatch.on('error', (err) => this.#onError(err));
    const gauge = informerObjects().labels({ informer: this.name });
    gauge.set(0);
    informerRestarts().labels({ informer: this.name }).inc(0);
  }

  /** Registers change handlers. Handlers added after sync are not replayed the existing objects. */
  addEventHandler(handler: InformerEventHandler<T>): void {
    this.#handlers.push(handler);
  }

  /** Starts list+watch in the background. Calling it on a running informer does nothing. */
  start(): void {
    if (this.#running) {
      return;
    }
    this.#running = true;
    this.#failures = 0;
    this.#run();
    if (this.#resyncPeriodMs !== undefined && this.#resyncPeriodMs > 0) {
      this.#resyncTimer = setInterval(() => this.#resync(), this.#resyncPeriodMs);
      this.#resyncTimer.unref();
    }
  }

  /** Stops watching; the cache keeps its last contents. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#restartTimer);
    clearInterval(this.#resyncTimer);
    this.#restartTimer = undefined;
    this.#resyncTimer = undefined;
    await this.#listWatch.stop();
  }

  /** True once the first list has been applied to the cache. */
  hasSynced(): boolean {
    return this.#synced;
  }

  /** Resolves once synced; rejects with the signal's reason if `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.#synced) {
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal?.reason ?? new Error(`informer ${this.name}: stopped before sync`));
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#syncWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** The object with key `namespace/name` (or `name` when cluster-scoped). */
  get(key: string): T | undefined {
    return this.#store.get(key);
  }

  /** Every cached object. */
  list(): T[] {
    return this.#store.list();
  }

  /** Every cached key. */
  keys(): string[] {
    return this.#store.keys();
  }

  /** Cached objects in `namespace`. */
  listInNamespace(namespace: string): T[] {
    return this.#store.byIndex(NAMESPACE_INDEX, namespace);
  }

  /** Cached objects filed under `value` by the index function called `indexName`. */
  byIndex(indexName: string, value: string): T[] {
    return this.#store.byIndex(indexName, value);
  }

  /** The resourceVersion a restart would resume the watch from ('' before the first list or after a 410). */
  lastResourceVersion(): string {
    return this.#listWatch.latestResourceVersion();
  }

  #run(): void {
    this.#listWatch.start().catch((error: unknown) => this.#onError(error));
  }

  #markSynced(): void {
    if (this.#synced) {
      return;
    }
    this.#synced = true;
    this.#logger.info('informer synced', { objects: this.#store.size });
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const wake of waiters) {
      wake();
    }
  }

  #onError(error: unknown): void {
    if (!this.#running || this.#restartTimer !== undefined) {
      // Aborting the watch in stop() surfaces as an error too; nothing to restart then.
      return;
    }
    this.#failures += 1;
    const delayMs = restartDelayMs(this.#failures, this.#backoff);
    informerRestarts().labels({ informer: this.name }).inc();
    this.#logger.warn('list/watch failed; restarting', {
      status: apiStatusCode(error),
      error: describeError(error),
      attempt: this.#failures,
      delayMs,
      resumeFrom: this.#listWatch.latestResourceVersion() || 'relist',
    });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#running) {
        this.#run();
      }
    }, delayMs);
  }

  #applyUpsert(obj: T): void {
    // Any delivered object proves the connection works again.
    this.#failures = 0;
    const previous = this.#store.upsert(obj);
    informerObjects().labels({ informer: this.name }).set(this.#store.size);
    for (const handler of this.#handlers) {
      this.#callHandler(() =>
        previous === undefined ? handler.onAdd?.(obj) : handler.onUpdate?.(previous, obj),
      );
    }
  }

  #applyDelete(obj: T): void {
    this.#failures = 0;
    this.#store.remove(objectKey(obj));
    informerObjects().labels({ informer: this.name }).set(this.#store.size);
    for (const handler of this.#handlers) {
      this.#callHandler(() => handler.onDelete?.(obj));
    }
  }

  #resync(): void {
    if (!this.#synced) {
      return;
    }
    for (const obj of this.#store.list()) {
      for (const handler of this.#handlers) {
        this.#callHandler(() => handler.onUpdate?.(obj, obj));
      }
    }
  }

  #callHandler(call: () => void): void {
    // The client swallows exceptions thrown inside watch callbacks (they land in its JSON parse
    // try/catch) and would skip its own bookkeeping for that event; contain them here instead.
    try {
      call();
    } catch (error) {
      this.#logger.error('informer event handler threw', errorFields(error));
    }
  }
}
