/**
 * JSON writes (create, replace, delete) of Endpoints and EndpointSlices over one keep-alive HTTPS
 * agent.
 *
 * The typed clients of `@kubernetes/client-node` send every request through an `https.Agent`
 * without keep-alive, so each write pays a TLS handshake; at thousands of writes per second that
 * handshake was most of the controllers' CPU time (measured with bench/endpoints.ts). Writing plain
 * JSON also skips the typed serializer, which the cached objects (already plain JSON) do not need.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { ApiRequestError } from './runtime/kube.ts';

/** The collection paths the endpoint controllers write. */
export const ENDPOINTS_PATH = (namespace: string) => `/api/v1/namespaces/${namespace}/endpoints`;
/** The collection path of EndpointSlices in a namespace. */
export const ENDPOINTSLICES_PATH = (namespace: string) =>
  `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`;

const REQUEST_TIMEOUT_MS = 30_000;

/** Sends JSON writes to the current cluster of a kubeconfig over reused connections. */
export class KubeJsonWriter {
  readonly #kubeConfig: KubeConfig;
  #prepared: Promise<{ base: URL; options: https.RequestOptions }> | undefined;

  /** @param kubeConfig credentials and server */
  constructor(kubeConfig: KubeConfig) {
    this.#kubeConfig = kubeConfig;
  }

  /** POSTs `body` to the collection at `collectionPath`; resolves with the created object. */
  create<T extends KubernetesObject>(collectionPath: string, body: T): Promise<T> {
    return this.#send('POST', collectionPath, body) as Promise<T>;
  }

  /** PUTs `body` over the object `name` of the collection; resolves with the stored object. */
  replace<T extends KubernetesObject>(collectionPath: string, name: string, body: T): Promise<T> {
    return this.#send('PUT', `${collectionPath}/${encodeURIComponent(name)}`, body) as Promise<T>;
  }

  /** DELETEs the object `name` of the collection. */
  async delete(collectionPath: string, name: string): Promise<void> {
    await this.#send('DELETE', `${collectionPath}/${encodeURIComponent(name)}`, undefined);
  }

  #prepare(): Promise<{ base: URL; options: https.RequestOptions }> {
    this.#prepared ??= (async () => {
      const cluster = this.#kubeConfig.getCurrentCluster();
      if (!cluster) throw new Error('kubeconfig has no current cluster');
      const options: https.RequestOptions = { headers: {} };
      await this.#kubeConfig.applyToHTTPSOptions(options);
      const base = new URL(cluster.server.replace(/\/$/, ''));
      const { ca, cert, key, rejectUnauthorized, servername } = options;
      options.agent =
        base.protocol === 'http:'
          ? new http.Agent({ keepAlive: true })
          : new https.Agent({ keepAlive: true, ca, cert, key, rejectUnauthorized, servername });
      return { base, options };
    })();
    return this.#prepared;
  }

  async #send(method: string, path: string, body: unknown): Promise<unknown> {
    const { base, options } = await this.#prepare();
    // Tokens from exec or file providers can rotate; headers are refreshed per request.
    const headers: Record<string, string> = { Accept: 'application/json' };
    const fresh: https.RequestOptions = { headers: {} };
    await this.#kubeConfig.applyToHTTPSOptions(fresh);
    Object.assign(headers, fresh.headers);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const url = new URL(base.pathname.replace(/\/$/, '') + path, base);
    const transport = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const request = transport.request(url, { ...options, method, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let decoded: unknown = text;
          try {
            decoded = JSON.parse(text);
          } catch {
            // Not JSON (a proxy's error page); the text is kept for the message.
          }
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            resolve(decoded);
            return;
          }
          const message =
            typeof decoded === 'object' && decoded !== null && 'message' in decoded
              ? String(decoded.message)
              : text.slice(0, 200);
          reject(new ApiRequestError(status, `${method} ${path}: ${status} ${message}`, decoded));
        });
      });
      request.setTimeout(REQUEST_TIMEOUT_MS, () =>
        request.destroy(new Error(`${method} ${path}: no answer in ${REQUEST_TIMEOUT_MS} ms`)),
      );
      request.on('error', reject);
      request.end(payload);
    });
  }
}
