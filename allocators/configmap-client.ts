import { ApiException, type CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import type { ConfigMapClient } from './configmap-store.ts';
import { ConflictError } from './errors.ts';

function conflictMessage(error: ApiException<unknown>): string | undefined {
  const body = error.body;
  if (typeof body === 'string') {
    try {
      const parsed: unknown = JSON.parse(body);
      if (typeof parsed === 'object' && parsed !== null && 'message' in parsed) return String(parsed.message);
    } catch {
      return body || undefined;
    }
  }
  if (typeof body === 'object' && body !== null && 'message' in body) return String(body.message);
  return undefined;
}

/** Rethrows a 409 as {@link ConflictError}, anything else unchanged. */
function rethrow(error: unknown): never {
  if (error instanceof ApiException && error.code === 409) throw new ConflictError(conflictMessage(error));
  throw error;
}

/**
 * {@link ConfigMapClient} over client-node's CoreV1Api: 404 on read becomes undefined, 409 on
 * create or replace becomes {@link ConflictError}. Replace sends the resourceVersion that is in
 * the object, which is what makes it a compare-and-swap.
 */
export class CoreV1ConfigMapClient implements ConfigMapClient {
  readonly #api: CoreV1Api;

  /** @param api a CoreV1Api made from the process's KubeConfig */
  constructor(api: CoreV1Api) {
    this.#api = api;
  }

  /** See {@link ConfigMapClient.get}. */
  async get(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
    try {
      return await this.#api.readNamespacedConfigMap({ namespace, name });
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw error;
    }
  }

  /** See {@link ConfigMapClient.create}. */
  async create(configMap: V1ConfigMap): Promise<V1ConfigMap> {
    const namespace = requireField(configMap.metadata?.namespace, 'metadata.namespace');
    try {
      return await this.#api.createNamespacedConfigMap({ namespace, body: configMap });
    } catch (error) {
      rethrow(error);
    }
  }

  /** See {@link ConfigMapClient.replace}. */
  async replace(configMap: V1ConfigMap): Promise<V1ConfigMap> {
    const namespace = requireField(configMap.metadata?.namespace, 'metadata.namespace');
    const name = requireField(configMap.metadata?.name, 'metadata.name');
    requireField(configMap.metadata?.resourceVersion, 'metadata.resourceVersion');
    try {
      return await this.#api.replaceNamespacedConfigMap({ namespace, name, body: configMap });
    } catch (error) {
      rethrow(error);
    }
  }
}

/** An unconditional replace would defeat the compare-and-swap, so a missing field is a bug here. */
function requireField(value: string | undefined, field: string): string {
  if (value === undefined || value === '') throw new Error(`ConfigMap ${field} is required`);
  return value;
}
