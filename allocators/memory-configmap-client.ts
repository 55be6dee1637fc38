import type { V1ConfigMap } from '@kubernetes/client-node';
import type { ConfigMapClient } from './configmap-store.ts';
import { ConflictError } from './errors.ts';

/**
 * An in-memory {@link ConfigMapClient} with the API server's optimistic concurrency: every
 * write bumps resourceVersion, replace succeeds only with the current one, create fails if the
 * object exists. Objects are copied in and out, so callers cannot change stored state by
 * mutating what they hold. For tests and benchmarks.
 */
export class InMemoryConfigMapClient implements ConfigMapClient {
  /** Successful creates and replaces. */
  writes = 0;
  /** Writes rejected with a conflict. */
  conflicts = 0;
  /**
   * Called before each create/replace is checked; returning true makes that write fail with a
   * conflict as if another writer had just won (the stored object's resourceVersion is bumped).
   */
  injectConflict: (configMap: V1ConfigMap) => boolean = () => false;
  readonly #objects = new Map<string, V1ConfigMap>();
  #resourceVersion = 1000;

  /** See {@link ConfigMapClient.get}. */
  async get(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
    return this.peek(namespace, name);
  }

  /** The stored object right now, synchronously (a copy). */
  peek(namespace: string, name: string): V1ConfigMap | undefined {
    const stored = this.#objects.get(`${namespace}/${name}`);
    return stored === undefined ? undefined : structuredClone(stored);
  }

  /** Stores `configMap` unconditionally, as an administrator's `kubectl replace --force` would. */
  put(configMap: V1ConfigMap): V1ConfigMap {
    return this.#store(configMap);
  }

  /** Bumps the resourceVersion of a stored object without changing it, as a concurrent no-op write does. */
  touch(namespace: string, name: string): void {
    const stored = this.#objects.get(`${namespace}/${name}`);
    if (stored !== undefined) this.#store(stored);
  }

  /** See {@link ConfigMapClient.create}. */
  async create(configMap: V1ConfigMap): Promise<V1ConfigMap> {
    const key = keyOf(configMap);
    if (this.#injected(configMap) || this.#objects.has(key)) {
      this.conflicts++;
      throw new ConflictError(`configmaps "${configMap.metadata?.name}" already exists`);
    }
    this.writes++;
    return this.#store(configMap);
  }

  /** See {@link ConfigMapClient.replace}. */
  async replace(configMap: V1ConfigMap): Promise<V1ConfigMap> {
    const key = keyOf(configMap);
    const stored = this.#objects.get(key);
    if (stored === undefined) throw new Error(`configmaps "${configMap.metadata?.name}" not found`);
    const injected = this.#injected(configMap);
    if (
      injected ||
      configMap.metadata?.resourceVersion !== this.#objects.get(key)?.metadata?.resourceVersion
    ) {
      this.conflicts++;
      throw new ConflictError(
        `Operation cannot be fulfilled on configmaps "${configMap.metadata?.name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    this.writes++;
    return this.#store(configMap);
  }

  #injected(configMap: V1ConfigMap): boolean {
    if (!this.injectConflict(configMap)) return false;
    const stored = this.#objects.get(keyOf(configMap));
    if (stored !== undefined) this.#store(stored);
    return true;
  }

  #store(configMap: V1ConfigMap): V1ConfigMap {
    const copy = structuredClone(configMap);
    copy.metadata = { ...copy.metadata, resourceVersion: String(++this.#resourceVersion) };
    this.#objects.set(keyOf(copy), copy);
    return structuredClone(copy);
  }
}

function keyOf(configMap: V1ConfigMap): string {
  return `${configMap.metadata?.namespace}/${configMap.metadata?.name}`;
}
