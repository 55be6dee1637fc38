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
   * Overrides the list call; by default the informer GETs `path` itself so that listed objects
   * have the same plain-JSON shape as watched ones (see {@link getJson}).
   */
  list?: () => Promise<KubernetesListObject<T>>;
  /** Receives restarts and handler failures. */
  logger: Logger;
}

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

/**
 * An object store keyed by {@link objectKey} with any number of secondary indexes. Separate from
 * {@link Informer} so the indexing logic is testable without a server.
 */
export class IndexedStore<T extends KubernetesObject> {
  readonly #objects = new Map<string, T>();
  readonly #indexers: Map<string, IndexFunction<T>>;
  /** index name → index value → keys */
  readonly #indexes = new Map<string, Map<string, Set<string>>>();
  /** index name → key → values the object was filed under, so removal needs no recomputation */
  readonly #filedUnder = new Map<string, Map<string, readonly string[]>>();

  /** @param indexers index functions by name; {@link NAMESPACE_INDEX} is always added. */
  constructor(indexers: Record<string, IndexFunction<T>> = {}) {
    this.#indexers = new Map(Object.entries(indexers));
    this.#indexers.set(NAMESPACE_INDEX, (obj) => [obj.metadata?.namespace ?? '']);
    for (const name of this.#indexers.keys()) {
      this.#indexes.set(name, new Map());
      this.#filedUnder.set(name, new Map());
    }
  }

  /** Stores `obj` under its key, replacing (and re-indexing) any previous version. Returns the previous one. */
  upsert(obj: T): T | undefined {
    const key = objectKey(obj);
    const previous = this.#objects.get(key);
    if (previous !== undefined) {
      this.#unindex(key);
    }
    this.#objects.set(key, obj);
    for (const [indexName, indexFunction] of this.#indexers) {
      const values = [...new Set(indexFunction(obj))];
      this.#filedUnder.get(indexName)!.set(key, values);
      const index = this.#indexes.get(indexName)!;
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
    this.#unindex(key);
    this.#objects.delete(key);
    return previous;
  }

  #unindex(key: string): void {
    for (const [indexName, filed] of this.#filedUnder) {
      const index = this.#indexes.get(indexName)!;
      for (const value of filed.get(key) ?? []) {
        const keys = index.get(value);
        keys?.delete(key);
        if (keys?.size === 0) {
          index.delete(value);
        }
      }
      filed.delete(key);
    }
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
    const index = this.#indexes.get(indexName);
    if (index === undefined) {
      const known = [...this.#indexes.keys()].map((name) => `"${name}"`).join(', ');
      throw new Error(`index ${JSON.stringify(indexName)} does not exist: declared indexes: ${known}`);
    }
    return [...(index.get(value) ?? [])].map((key) => this.#objects.get(key)!);
  }

  /** The distinct values index `indexName` currently holds objects under. */
  indexValues(indexName: string): string[] {
    return [...(this.#indexes.get(indexName)?.keys() ?? [])];
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
  const items = (list.items ?? []).map((item) => ({ apiVersion: list.apiVersion, kind, ...item }));
  return { ...list, items };
}

/**
 * Watch that tells the informer when ListWatch opens a watch. ListWatch applies a list's items to
 * its cache synchronously right before it opens the watch that follows, so the first call means
 * "the first list is in the cache", which is the informer's sync point.
 */
class ObservedWatch extends Watch {
  readonly #onWatchStart: () => void;

  constructor(kubeConfig: KubeConfig, onWatchStart: () => void) {
    super(kubeConfig);
    this.#onWatchStart = onWatchStart;
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    this.#onWatchStart();
    return super.watch(path, queryParams, callback, done);
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
      (async () =>
        withItemKinds(
          (await getJson(kubeConfig, path, { labelSelector, fieldSelector })) as KubernetesListObject<T>,
        ));
    const countedList = async () => {
      const result = await list();
      this.#failures = 0;
      return result;
    };
    const watch = new ObservedWatch(kubeConfig, () => this.#markSynced());
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
