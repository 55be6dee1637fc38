/**
 * The process's way to the API server: choosing where the configuration comes from, plain JSON
 * requests over kept-alive connections, connection reuse for the typed API clients, and reading
 * HTTP status codes out of the different error shapes the client produces.
 */
import http from 'node:http';
import https from 'node:https';
import { isIPv6 } from 'node:net';
import {
  type ConfigurationOptions,
  KubeConfig,
  Observable,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';

/** Where {@link loadKubeConfig} found the configuration, for the startup log line. */
export type KubeConfigSource = 'flag' | 'env' | 'in-cluster';

/** Options for {@link loadKubeConfig}. */
export interface LoadKubeConfigOptions {
  /** Path given with `--kubeconfig`; wins over everything else. */
  kubeconfigPath?: string | undefined;
  /** Environment to read KUBECONFIG and the in-cluster variables from; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Loads a KubeConfig the way the controller manager's flags document it: the `--kubeconfig` path,
 * else the first file in `KUBECONFIG`, else the in-cluster service account.
 *
 * Unlike `KubeConfig.loadFromDefault`, this never falls back to `~/.kube/config`: a controller
 * running in a pod must not silently pick up a developer's credentials baked into an image.
 */
export function loadKubeConfig(options: LoadKubeConfigOptions = {}): {
  kubeConfig: KubeConfig;
  source: KubeConfigSource;
} {
  const env = options.env ?? process.env;
  const kubeConfig = new KubeConfig();
  if (options.kubeconfigPath) {
    kubeConfig.loadFromFile(options.kubeconfigPath);
    return { kubeConfig, source: 'flag' };
  }
  const fromEnv = env['KUBECONFIG']?.split(':').find((path) => path !== '');
  if (fromEnv) {
    kubeConfig.loadFromFile(fromEnv);
    return { kubeConfig, source: 'env' };
  }
  if (!env['KUBERNETES_SERVICE_HOST'] || !env['KUBERNETES_SERVICE_PORT']) {
    throw new Error(
      'no kubeconfig: pass --kubeconfig, set KUBECONFIG, or run in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset)',
    );
  }
  // Built here rather than with loadFromCluster(), which reads process.env instead of `env`.
  const host = env['KUBERNETES_SERVICE_HOST'];
  const serviceAccount = '/var/run/secrets/kubernetes.io/serviceaccount';
  kubeConfig.loadFromClusterAndUser(
    {
      name: 'inCluster',
      server: `https://${isIPv6(host) ? `[${host}]` : host}:${env['KUBERNETES_SERVICE_PORT']}`,
      caFile: `${serviceAccount}/ca.crt`,
      skipTLSVerify: false,
    },
    {
      name: 'inClusterUser',
      authProvider: { name: 'tokenFile', config: { tokenFile: `${serviceAccount}/token` } },
    },
  );
  return { kubeConfig, source: 'in-cluster' };
}

/**
 * Error thrown by {@link KubeJsonClient.request} for a non-2xx answer. `statusCode` is the field
 * name the client library's ListWatch checks for 410 Gone, so a failed list flows through it
 * unchanged.
 */
export class ApiRequestError extends Error {
  /** HTTP status of the answer. */
  readonly statusCode: number;
  /** The decoded body (usually a metav1.Status), when it was JSON. */
  readonly body: unknown;
  /** The Status message (or the start of a non-JSON body), without the method and path. */
  readonly serverMessage: string;

  /**
   * @param statusCode HTTP status of the answer
   * @param message the whole message, `<METHOD> <path>: <status> <server message>`
   * @param body the decoded body
   * @param serverMessage the server's own words; the message when absent
   */
  constructor(statusCode: number, message: string, body: unknown, serverMessage = message) {
    super(message);
    this.name = 'ApiRequestError';
    this.statusCode = statusCode;
    this.body = body;
    this.serverMessage = serverMessage;
  }
}

/** Options of one {@link KubeJsonClient.request}. */
export interface KubeRequestOptions {
  /** Query parameters; undefined values are left out. */
  query?: Record<string, string | undefined>;
  /** Sent as JSON when present. */
  body?: unknown;
  /** Content-Type of the body; `application/json` when absent (patches need another). */
  contentType?: string;
  /** The request fails when no complete answer came in this time; 30 s when absent. */
  timeoutMs?: number;
  /** The request fails when the answer's body grows beyond this; unlimited when absent. */
  maxResponseBytes?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

interface Transport {
  /** The cluster's server URL without a trailing slash; request paths are appended to it. */
  server: string;
  /** The keep-alive pool, with the kubeconfig's TLS settings for an https server. */
  agent: http.Agent;
}

/**
 * Plain JSON requests to the current cluster of a KubeConfig over kept-alive connections.
 *
 * Why: `@kubernetes/client-node` 2.x opens a new connection (and TLS handshake) per request, and
 * at thousands of writes per second the handshakes were most of the controllers' CPU time and
 * most of an admission write's latency. Plain JSON also keeps listed objects in the shape the
 * watch stream delivers (timestamps as strings), where the typed clients would turn them into
 * Dates and leave caches of mixed shapes.
 *
 * Obtain it with {@link kubeJsonClient}, which gives every user of one KubeConfig the same
 * connection pool. The pool carries the kubeconfig's TLS settings (CA, client certificate,
 * verification, server name) as read at the first request; credentials and headers are read
 * again for every request, so rotated bearer tokens take effect at once.
 */
export class KubeJsonClient {
  readonly #kubeConfig: KubeConfig;
  #transport: Promise<Transport> | undefined;
  /** Kept beside {@link #transport} so {@link close} can act at once. */
  #agent: http.Agent | undefined;

  /** @param kubeConfig credentials and server; prefer {@link kubeJsonClient}, which shares the pool */
  constructor(kubeConfig: KubeConfig) {
    this.#kubeConfig = kubeConfig;
  }

  /**
   * Sends one request and resolves with the decoded JSON answer (the text when it is not JSON).
   * Rejects with {@link ApiRequestError} for a non-2xx answer, whose message is
   * `<METHOD> <path>: <status> <Status message>`.
   */
  async request(method: string, path: string, options: KubeRequestOptions = {}): Promise<unknown> {
    const { server, agent } = await this.#prepare();
    const perRequest: https.RequestOptions = { headers: {} };
    await this.#kubeConfig.applyToHTTPSOptions(perRequest);
    // An object, not the raw-array form: it started as `{}` and the kubeconfig only adds fields.
    const configured = perRequest.headers as http.OutgoingHttpHeaders;
    const headers: http.OutgoingHttpHeaders = { ...configured, Accept: 'application/json' };
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    if (payload !== undefined) {
      headers['Content-Type'] = options.contentType ?? 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    const url = new URL(server + path);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, value);
    }
    const transport = url.protocol === 'http:' ? http : https;
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const maxResponseBytes = options.maxResponseBytes ?? Number.POSITIVE_INFINITY;
    return new Promise((resolve, reject) => {
      const request = transport.request(
        url,
        { method, headers, agent, ...(perRequest.auth !== undefined && { auth: perRequest.auth }) },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxResponseBytes) {
              request.destroy(new Error(`${method} ${path}: answer larger than ${maxResponseBytes} bytes`));
            } else {
              chunks.push(chunk);
            }
          });
          response.on('error', reject);
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            try {
              body = JSON.parse(text);
            } catch {
              // A proxy or a crashing server may answer with plain text; keep it for the message.
            }
            const status = response.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              resolve(body);
              return;
            }
            const serverMessage = statusMessage(body, text);
            reject(
              new ApiRequestError(
                status,
                `${method} ${path}: ${status} ${serverMessage}`,
                body,
                serverMessage,
              ),
            );
          });
        },
      );
      request.setTimeout(timeoutMs, () =>
        request.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`)),
      );
      request.on('error', reject);
      request.end(payload);
    });
  }

  /** GETs `path`; see {@link request}. */
  get(path: string, options: Omit<KubeRequestOptions, 'body' | 'contentType'> = {}): Promise<unknown> {
    return this.request('GET', path, options);
  }

  /** POSTs `body` to the collection at `collectionPath`; resolves with the created object. */
  create<T>(collectionPath: string, body: T): Promise<T> {
    return this.request('POST', collectionPath, { body }) as Promise<T>;
  }

  /**
   * PUTs `body` over the object `name` of the collection; resolves with the stored object. The
   * write is conditional exactly when `body` carries a resourceVersion.
   */
  replace<T>(collectionPath: string, name: string, body: T): Promise<T> {
    return this.request('PUT', `${collectionPath}/${encodeURIComponent(name)}`, { body }) as Promise<T>;
  }

  /** DELETEs the object `name` of the collection. */
  async delete(collectionPath: string, name: string): Promise<void> {
    await this.request('DELETE', `${collectionPath}/${encodeURIComponent(name)}`);
  }

  /**
   * Closes the pooled connections (requests in flight fail), so a test's API server can shut
   * down. The client stays usable: a later request opens a new connection.
   */
  close(): void {
    this.#agent?.destroy();
  }

  #prepare(): Promise<Transport> {
    if (this.#transport === undefined) {
      const preparing = this.#connect();
      this.#transport = preparing;
      // A kubeconfig that cannot be read now may be readable later (a mounted file appearing).
      preparing.catch(() => {
        if (this.#transport === preparing) this.#transport = undefined;
      });
    }
    return this.#transport;
  }

  async #connect(): Promise<Transport> {
    const cluster = this.#kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const tls: https.RequestOptions = { headers: {} };
    await this.#kubeConfig.applyToHTTPSOptions(tls);
    const server = cluster.server.replace(/\/$/, '');
    const { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername } = tls;
    this.#agent = server.startsWith('http:')
      ? new http.Agent({ keepAlive: true })
      : new https.Agent({ keepAlive: true, ca, cert, key, pfx, passphrase, rejectUnauthorized, servername });
    return { server, agent: this.#agent };
  }
}

const clientsByKubeConfig = new WeakMap<KubeConfig, KubeJsonClient>();

/** The {@link KubeJsonClient} of `kubeConfig`: one per KubeConfig object, so one connection pool. */
export function kubeJsonClient(kubeConfig: KubeConfig): KubeJsonClient {
  let client = clientsByKubeConfig.get(kubeConfig);
  if (client === undefined) {
    client = new KubeJsonClient(kubeConfig);
    clientsByKubeConfig.set(kubeConfig, client);
  }
  return client;
}

/**
 * GETs `path` from the current cluster and returns the decoded JSON body (see
 * {@link KubeJsonClient} for why informers list through it instead of the typed API classes).
 */
export function getJson(
  kubeConfig: KubeConfig,
  path: string,
  query: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
): Promise<unknown> {
  return kubeJsonClient(kubeConfig).get(path, { query, timeoutMs });
}

/** Makes per-call options for the typed API clients; see {@link createConnectionReuse}. */
export type RequestOptionsFactory = (contentType?: string) => ConfigurationOptions<ObservableMiddleware>;

/**
 * Returns a factory of per-call options for the typed API clients that send every request made
 * with them over one connection pool, optionally with a Content-Type (patches need one). For
 * calls the typed clients make better than {@link KubeJsonClient} (their serializers, patches).
 *
 * Why: client-node 2.x builds a fresh undici dispatcher for every request, so every write pays a
 * new TCP connection and TLS handshake. The middleware runs after the kubeconfig's
 * authentication has set headers and a dispatcher; it keeps the first dispatcher and puts it on
 * every later request. Bearer tokens are still applied per request; a rotated client
 * certificate takes effect when the process restarts.
 */
export function createConnectionReuse(): RequestOptionsFactory {
  let shared: ReturnType<RequestContext['getDispatcher']>;
  return (contentType?: string) => {
    const reuse: ObservableMiddleware = {
      pre: (context: RequestContext) => {
        const fresh = context.getDispatcher();
        if (shared === undefined) shared = fresh;
        else context.setDispatcher(shared);
        if (contentType !== undefined) context.setHeaderParam('Content-Type', contentType);
        return new Observable(Promise.resolve(context));
      },
      post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
    };
    return { middleware: [reuse], middlewareMergeStrategy: 'append' };
  };
}

function statusMessage(body: unknown, text: string): string {
  if (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string') {
    return body.message;
  }
  return text.slice(0, 200);
}

/**
 * The HTTP status carried by an error from any of the client's code paths: `code` on the typed
 * API's ApiException, `statusCode` on Watch and {@link KubeJsonClient} errors. Undefined for network
 * errors that never got an answer.
 */
export function apiStatusCode(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) {
    return undefined;
  }
  if ('statusCode' in error && typeof error.statusCode === 'number') {
    return error.statusCode;
  }
  if ('code' in error && typeof error.code === 'number') {
    return error.code;
  }
  return undefined;
}

/** A short description of an error for a log line: the HTTP status when there is one, else the message. */
export function describeError(error: unknown): string {
  const status = apiStatusCode(error);
  // The typed client's ApiException message is a multi-line dump; the Status body says it better.
  const body = typeof error === 'object' && error !== null && 'body' in error ? error.body : undefined;
  const statusText = typeof body === 'string' ? parseStatusMessage(body) : statusMessage(body, '');
  const message = statusText || (error instanceof Error ? error.message.split('\n')[0] : String(error));
  return status === undefined ? message : `${status}: ${message}`;
}

function parseStatusMessage(text: string): string {
  try {
    return statusMessage(JSON.parse(text), '');
  } catch {
    return '';
  }
}
