/**
 * The HTTPS server every controller-manager replica runs for kube-apiserver's admission calls
 * (AdmissionReview v1). It is not tied to leader election: the API server picks any replica
 * behind the webhook Service, so all of them answer.
 */
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import { errorFields, type Logger } from '../controllers/runtime/logging.ts';
import type { ListenAddress } from '../controllers/runtime/manager.ts';
import { getOrCreateCounter, getOrCreateHistogram, METRIC_PREFIX } from '../controllers/runtime/metrics.ts';
import { MalformedReviewError, parseAdmissionReview, reviewOf } from './admission.ts';
import type { AdmissionHandler } from './handler.ts';

/** kube-apiserver caps request bodies at 3 MiB; an AdmissionReview carries at most two objects of that. */
const MAX_BODY_BYTES = 7 * 1024 * 1024;

/** Options of {@link WebhookServer}. */
export interface WebhookServerOptions {
  /** Where to listen (`--webhook-addr`). */
  readonly address: ListenAddress;
  /** PEM certificate chain (`--tls-cert-file`); reloaded when it changes. */
  readonly certFile: string;
  /** PEM private key (`--tls-key-file`); reloaded when it changes. */
  readonly keyFile: string;
  /** Handlers by URL path, e.g. `/mutate-services`. */
  readonly routes: ReadonlyMap<string, AdmissionHandler>;
  /** Process logger. */
  readonly logger: Logger;
  /**
   * Extra readiness for `/readyz`: undefined when ready, else why not (caches still syncing).
   * The server itself is ready once it listens with a certificate.
   */
  readonly notReadyReason?: () => string | undefined;
  /**
   * Backstop for file watching, which can miss changes on some volume types: the files are
   * also re-read this often (default 60 s; 0 disables).
   */
  readonly certificatePollMs?: number;
}

const admissionDuration = () =>
  getOrCreateHistogram({
    name: `${METRIC_PREFIX}webhook_admission_duration_seconds`,
    help: 'Time to answer an admission review, by webhook path and verdict.',
    labelNames: ['path', 'allowed'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5],
  });

const certificateReloads = () =>
  getOrCreateCounter({
    name: `${METRIC_PREFIX}webhook_certificate_reloads_total`,
    help: 'Serving certificate reloads, by result (success, error).',
    labelNames: ['result'],
  });

/**
 * Serves AdmissionReview v1 over HTTPS, plus `/healthz` and `/readyz`. The certificate and key
 * are read from files and swapped into the running server (`setSecureContext`) when the files
 * change, as a mounted Secret changes on rotation; connections already open keep their
 * handshake, new ones get the new certificate. A pair that does not load (half-written, key not
 * matching) is logged and the previous one stays in use.
 */
export class WebhookServer {
  readonly #options: WebhookServerOptions;
  readonly #logger: Logger;
  readonly #routes: Map<string, AdmissionHandler>;
  #server: Server | undefined;
  #watchers: FSWatcher[] = [];
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #loaded: { cert: string; key: string } | undefined;
  #reloading: Promise<boolean> | undefined;

  /** @param options listen address, certificate files, routes and logger */
  constructor(options: WebhookServerOptions) {
    this.#options = options;
    this.#routes = new Map(options.routes);
    this.#logger = options.logger.child({ component: 'webhook-server' });
  }

  /**
   * Serves more webhooks, before or after {@link start}: the controller-manager adds the pool
   * webhook, whose cache belongs to the LoadBalancer controller, beside the Service ones that
   * Service allocation set up. A path already served is replaced.
   */
  addRoutes(routes: ReadonlyMap<string, AdmissionHandler>): void {
    for (const [path, handler] of routes) this.#routes.set(path, handler);
  }

  /** The bound address (useful with port 0). */
  address(): ListenAddress {
    const bound = this.#server?.address() as AddressInfo | null | undefined;
    if (!bound) throw new Error('webhook server is not listening');
    return { host: bound.address, port: bound.port };
  }

  /** Loads the certificate, starts listening and watching the files. */
  async start(): Promise<void> {
    const pair = await this.#readPair();
    createSecureContext(pair);
    this.#loaded = pair;
    const server = createServer({ ...pair, keepAlive: true }, (request, response) => {
      this.#serve(request, response);
    });
    this.#server = server;
    const { host, port } = this.#options.address;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host === '' ? undefined : host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    for (const directory of new Set([dirname(this.#options.certFile), dirname(this.#options.keyFile)])) {
      // Watch the directory, not the file: Secret volumes and atomic writers replace files by
      // renaming, which a watch on the old inode never reports.
      const watcher = watch(directory, () => this.#scheduleReload());
      watcher.on('error', (error) => this.#logger.warn('certificate watch failed', errorFields(error)));
      this.#watchers.push(watcher);
    }
    const pollMs = this.#options.certificatePollMs ?? 60_000;
    if (pollMs > 0) {
      this.#poll = setInterval(() => void this.reloadCertificates(), pollMs);
      this.#poll.unref();
    }
    const bound = this.address();
    this.#logger.info('serving admission webhooks', {
      address: bound.host,
      port: bound.port,
      paths: [...this.#routes.keys()],
    });
  }

  /**
   * Re-reads the certificate files and swaps them in when they changed and load. Resolves true
   * when a new pair was installed.
   */
  reloadCertificates(): Promise<boolean> {
    this.#reloading ??= this.#reload().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  /** Stops watching and listening; open connections are closed. */
  async stop(): Promise<void> {
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
    const server = this.#server;
    if (server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  #scheduleReload(): void {
    // A rotation writes two files, often in several steps; wait for it to settle.
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.reloadCertificates(), 100);
    this.#debounce.unref();
  }

  async #readPair(): Promise<{ cert: string; key: string }> {
    const [cert, key] = await Promise.all([
      readFile(this.#options.certFile, 'utf8'),
      readFile(this.#options.keyFile, 'utf8'),
    ]);
    return { cert, key };
  }

  async #reload(): Promise<boolean> {
    try {
      const pair = await this.#readPair();
      if (pair.cert === this.#loaded?.cert && pair.key === this.#loaded.key) return false;
      createSecureContext(pair);
      this.#server?.setSecureContext(pair);
      this.#loaded = pair;
      certificateReloads().labels({ result: 'success' }).inc();
      this.#logger.info('reloaded serving certificate', { certFile: this.#options.certFile });
      return true;
    } catch (error) {
      certificateReloads().labels({ result: 'error' }).inc();
      this.#logger.warn('serving certificate not reloaded; keeping the previous one', errorFields(error));
      return false;
    }
  }

  #serve(request: IncomingMessage, response: ServerResponse): void {
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    if (path === '/healthz' || path === '/livez') {
      response.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      return;
    }
    if (path === '/readyz') {
      const reason = this.#options.notReadyReason?.();
      if (reason === undefined) response.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      else response.writeHead(503, { 'Content-Type': 'text/plain' }).end(reason);
      return;
    }
    const handler = this.#routes.get(path);
    if (handler === undefined) {
      response.writeHead(404, { 'Content-Type': 'text/plain' }).end(`no webhook at ${path}`);
      return;
    }
    if (request.method !== 'POST') {
      response.writeHead(405, { Allow: 'POST', 'Content-Type': 'text/plain' }).end('use POST');
      return;
    }
    const started = process.hrtime.bigint();
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        response.writeHead(413, { 'Content-Type': 'text/plain' }).end('request body too large');
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      if (response.headersSent) return;
      void this.#answer(path, handler, Buffer.concat(chunks, size), response, started);
    });
  }

  async #answer(
    path: string,
    handler: AdmissionHandler,
    body: Buffer,
    response: ServerResponse,
    started: bigint,
  ): Promise<void> {
    let allowed = 'error';
    try {
      const admissionRequest = parseAdmissionReview(JSON.parse(body.toString('utf8')) as unknown);
      const answer = await handler(admissionRequest);
      allowed = String(answer.allowed);
      const payload = JSON.stringify(reviewOf(answer));
      response.writeHead(200, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(payload),
      });
      response.end(payload);
    } catch (error) {
      const badRequest = error instanceof MalformedReviewError || error instanceof SyntaxError;
      if (!badRequest) this.#logger.error('admission webhook failed', { path, ...errorFields(error) });
      if (!response.headersSent) {
        response
          .writeHead(badRequest ? 400 : 500, { 'Content-Type': 'text/plain' })
          .end(error instanceof Error ? error.message : String(error));
      }
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      admissionDuration().labels({ path, allowed }).observe(seconds);
    }
  }
}
