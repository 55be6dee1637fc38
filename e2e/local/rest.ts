import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** A non-2xx answer from the API server, with its status code and decoded Status body. */
export class KubeRestError extends Error {
  readonly statusCode: number;
  readonly body: unknown;

  constructor(statusCode: number, message: string, body: unknown) {
    super(message);
    this.name = 'KubeRestError';
    this.statusCode = statusCode;
    this.body = body;
  }
}

/** The HTTP status of a {@link KubeRestError}, undefined for anything else. */
export function restStatus(error: unknown): number | undefined {
  return error instanceof KubeRestError ? error.statusCode : undefined;
}

/**
 * Plain-JSON access to the API for the local cluster's components. Objects stay in the shape the
 * informers deliver (timestamps as strings), which the typed client would turn into Dates, and
 * merge patches need no per-call header plumbing.
 */
export class KubeRest {
  readonly #kubeConfig: KubeConfig;
  readonly #agent: https.Agent;

  constructor(kubeConfig: KubeConfig) {
    this.#kubeConfig = kubeConfig;
    // Components write many small requests; reusing connections keeps the API server's TLS cost down.
    this.#agent = new https.Agent({ keepAlive: true, maxSockets: 16 });
  }

  /** Sends one request and returns the decoded JSON body; rejects with {@link KubeRestError}. */
  async request(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<unknown> {
    const cluster = this.#kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/$/, '') + path);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (payload !== undefined) {
      headers['Content-Type'] = contentType;
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const options: https.RequestOptions = { method, headers };
    await this.#kubeConfig.applyToHTTPSOptions(options);
    const isHttp = url.protocol === 'http:';
    if (!isHttp) options.agent = this.#agent;
    return new Promise((resolve, reject) => {
      const request = (isHttp ? http : https).request(url, options, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let decoded: unknown = text;
          try {
            decoded = JSON.parse(text);
          } catch {
            // Not JSON (a proxy error page); the text goes into the message.
          }
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            resolve(decoded);
            return;
          }
          const message =
            typeof decoded === 'object' && decoded !== null && 'message' in decoded
              ? String(decoded.message)
              : text;
          reject(new KubeRestError(status, `${method} ${path}: ${status} ${message}`, decoded));
        });
      });
      request.setTimeout(30_000, () => request.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
      request.on('error', reject);
      request.end(payload);
    });
  }

  /** POSTs a new object to a collection path. */
  create<T>(collectionPath: string, object: T): Promise<T> {
    return this.request('POST', collectionPath, object) as Promise<T>;
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
    this.#agent.destroy();
  }
}
