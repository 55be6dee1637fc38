import type { KubeConfig } from '@kubernetes/client-node';
import { ApiRequestError, KubeJsonClient } from '../../controllers/runtime/kube.ts';

/** The HTTP status of a non-2xx answer from the API server, undefined for anything else. */
export function restStatus(error: unknown): number | undefined {
  return error instanceof ApiRequestError ? error.statusCode : undefined;
}

/**
 * Plain-JSON access to the API for the local cluster's components, over the runtime's kept-alive
 * client. Objects stay in the shape the informers deliver (timestamps as strings), which the typed
 * client would turn into Dates, and merge patches need no per-call header plumbing. It has a
 * connection pool of its own, so {@link close} ends only the local cluster's connections.
 */
export class KubeRest {
  readonly #client: KubeJsonClient;

  constructor(kubeConfig: KubeConfig) {
    this.#client = new KubeJsonClient(kubeConfig);
  }

  /** Sends one request and returns the decoded JSON body; rejects with ApiRequestError. */
  request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<unknown> {
    return this.#client.request(method, path, { body, contentType, timeoutMs: 30_000 });
  }

  /** POSTs a new object to a collection path. */
  create<T>(collectionPath: string, object: T): Promise<T> {
    return this.request('POST', collectionPath, object) as Promise<T>;
  }

  /** POSTs a new object unless one of that name exists already (a 409 counts as done). */
  async createUnlessExists(collectionPath: string, object: unknown): Promise<void> {
    try {
      await this.create(collectionPath, object);
    } catch (error) {
      if (restStatus(error) !== 409) throw error;
    }
  }

  /** Applies a JSON merge patch. */
  mergePatch<T>(path: string, patch: unknown): Promise<T> {
    return this.request('PATCH', path, patch, 'application/merge-patch+json') as Promise<T>;
  }

  /** Deletes; a 404 counts as done. */
  async delete(path: string, options: { gracePeriodSeconds?: number; uid?: string } = {}): Promise<void> {
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (options.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = options.gracePeriodSeconds;
    if (options.uid !== undefined) body.preconditions = { uid: options.uid };
    try {
      await this.request('DELETE', path, body);
    } catch (error) {
      if (restStatus(error) !== 404) throw error;
    }
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.#client.close();
  }
}
