import type { V1ConfigMap } from '@kubernetes/client-node';
import { ApiRequestError, type KubeJsonClient } from '../controllers/runtime/kube.ts';
import type { ConfigMapClient } from './configmap-store.ts';
import { ConflictError } from './errors.ts';

/** Answers beyond this are not ConfigMaps we wrote (a ConfigMap holds at most 1 MiB). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/**
 * {@link ConfigMapClient} over the runtime's {@link KubeJsonClient}: 404 on read becomes
 * undefined, 409 on create or replace becomes {@link ConflictError}. Replace sends the
 * resourceVersion that is in the object, which is what makes it a compare-and-swap.
 *
 * Every admission request waits for one of these writes, so their latency is the webhook's; the
 * JSON client's kept-alive connections spare each write a TLS handshake.
 */
export class KubeConfigMapClient implements ConfigMapClient {
  readonly #api: KubeJsonClient;

  /** @param api the process's JSON client, from `kubeJsonClient(kubeConfig)` */
  constructor(api: KubeJsonClient) {
    this.#api = api;
  }

  /** See {@link ConfigMapClient.get}. */
  async get(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
    try {
      return (await this.#api.get(`${collectionPath(namespace)}/${encodeURIComponent(name)}`, {
        maxResponseBytes: MAX_RESPONSE_BYTES,
      })) as V1ConfigMap;
    } catch (error) {
      if (error instanceof ApiRequestError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  /** See {@link ConfigMapClient.create}. */
  async create(configMap: V1ConfigMap): Promise<V1ConfigMap> {
    const namespace = requireField(configMap.metadata?.namespace, 'metadata.namespace');
    try {
      return await this.#api.create(collectionPath(namespace), configMap);
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
      return await this.#api.replace(collectionPath(namespace), name, configMap);
    } catch (error) {
      rethrow(error);
    }
  }
}

function collectionPath(namespace: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`;
}

/** Rethrows a 409 (AlreadyExists or Conflict) as {@link ConflictError}, anything else unchanged. */
function rethrow(error: unknown): never {
  if (error instanceof ApiRequestError && error.statusCode === 409)
    throw new ConflictError(error.serverMessage);
  throw error;
}

/** An unconditional replace would defeat the compare-and-swap, so a missing field is a bug here. */
function requireField(value: string | undefined, field: string): string {
  if (value === undefined || value === '') throw new Error(`ConfigMap ${field} is required`);
  return value;
}
