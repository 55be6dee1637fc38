/**
 * Small helpers around `@kubernetes/client-node`'s KubeConfig: choosing where the configuration
 * comes from, reading raw JSON from the API server, and reading HTTP status codes out of the
 * different error shapes the client produces.
 */
import http from 'node:http';
import https from 'node:https';
import { isIPv6 } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

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
 * Error thrown by {@link getJson} for a non-2xx answer. `statusCode` is the field name the
 * client library's ListWatch checks for 410 Gone, so a failed list flows through it unchanged.
 */
export class ApiRequestError extends Error {
  /** HTTP status of the answer. */
  readonly statusCode: number;
  /** The decoded body (usually a metav1.Status), when it was JSON. */
  readonly body: unknown;

  constructor(statusCode: number, message: string, body: unknown) {
    super(message);
    this.name = 'ApiRequestError';
    this.statusCode = statusCode;
    this.body = body;
  }
}

/**
 * GETs `path` from the current cluster and returns the decoded JSON body.
 *
 * Informers list through this instead of the typed API classes so that listed objects have the
 * same shape as watched ones: the watch stream delivers plain JSON (timestamps as strings) and the
 * typed clients would turn listed timestamps into Date objects, leaving a cache of mixed shapes.
 */
export async function getJson(
  kubeConfig: KubeConfig,
  path: string,
  query: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
): Promise<unknown> {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) {
    throw new Error('kubeconfig has no current cluster');
  }
  const url = new URL(cluster.server.replace(/\/$/, '') + path);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) {
      url.searchParams.set(name, value);
    }
  }
  const options: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
  await kubeConfig.applyToHTTPSOptions(options);
  const transport = url.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const request = transport.request(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
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
        reject(new ApiRequestError(status, `GET ${path}: ${status} ${statusMessage(body, text)}`, body));
      });
    });
    request.setTimeout(timeoutMs, () =>
      request.destroy(new Error(`GET ${path}: no answer in ${timeoutMs} ms`)),
    );
    request.on('error', reject);
    request.end();
  });
}

function statusMessage(body: unknown, text: string): string {
  if (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string') {
    return body.message;
  }
  return text.slice(0, 200);
}

/**
 * The HTTP status carried by an error from any of the client's code paths: `code` on the typed
 * API's ApiException, `statusCode` on Watch and {@link getJson} errors. Undefined for network
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
