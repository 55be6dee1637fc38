/**
 * The local Kubernetes API server: an in-memory kube-apiserver over HTTPS for tests and the local
 * cluster. `startApiServer` returns once it serves, with the kubeconfig written.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ResourceCatalog } from './catalog.ts';
import { InProcessControllers } from './controllers.ts';
import { FaultInjector } from './faults.ts';
import { type AdmissionHook, Registry, SYSTEM_USER } from './registry.ts';
import type { ResourceType } from './resources.ts';
import { createRequestHandler, type OpenApiProvider, type TableConverter } from './server.ts';
import { ObjectStore } from './store.ts';
import { ensureServingCertificates } from './tls.ts';

/** Re-exported so tests can match errors and type the handles without reaching into the modules. */
export { ApiError } from './errors.ts';
export { FaultInjector } from './faults.ts';
export type { Registry } from './registry.ts';
export type { ObjectStore } from './store.ts';

/** Options of {@link startApiServer}. */
export interface ApiServerOptions {
  /** TCP port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /** Where the kubeconfig and TLS files go; by default a temporary directory removed on close. */
  dataDir?: string;
  /** Events kept for watch resume (default 10000); older resourceVersions get 410 Gone. */
  historyWindow?: number;
  /** Load objects from this file on start (when it exists) and save them to it on close. */
  snapshotPath?: string;
  /** Also save the snapshot this often (ms) while objects change, so a killed process loses little. */
  snapshotIntervalMs?: number;
  /** Bearer token clients must send; by default random, kept in the data directory across restarts. */
  token?: string;
  /** How often watches with allowWatchBookmarks get a BOOKMARK (default 5000 ms). */
  bookmarkIntervalMs?: number;
  /** Longest watch without timeoutSeconds, in seconds (default 1800, like kube-apiserver). */
  maxWatchSeconds?: number;
}

/** A running API server. */
export interface ApiServer {
  /** `https://127.0.0.1:<port>` */
  url: string;
  kubeconfigPath: string;
  token: string;
  caPem: string;
  faults: FaultInjector;
  /** Direct access to stored objects (reads, and writes that skip REST semantics). */
  store: ObjectStore;
  /** REST semantics without HTTP (the code behind every request). */
  registry: Registry;
  /** Resolves when the in-process controllers (garbage collector, namespaces, CRDs) have no queued work. */
  controllersIdle(): Promise<void>;
  /** Stops serving, ends watches and writes the snapshot when one is configured. */
  close(): Promise<void>;
}

/** The namespaces a new kube-apiserver cluster has. */
const BOOTSTRAP_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

/** Imports a sibling module if it exists (tables, OpenAPI and admission are written separately). */
async function optionalModule(file: string): Promise<Record<string, unknown> | undefined> {
  try {
    return (await import(new URL(file, import.meta.url).href)) as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

/** The token saved in the data directory, created on first use so a restarted server keeps it. */
async function dataDirToken(dataDir: string): Promise<string> {
  const path = join(dataDir, 'token');
  try {
    const saved = (await readFile(path, 'utf8')).trim();
    if (saved !== '') return saved;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(24).toString('hex');
  await writeFile(path, token, { mode: 0o600 });
  return token;
}

function kubeconfig(url: string, caPem: string, token: string): string {
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'portico-local',
        cluster: { server: url, 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
      },
    ],
    users: [{ name: 'portico-admin', user: { token } }],
    contexts: [
      {
        name: 'portico-local',
        context: { cluster: 'portico-local', user: 'portico-admin', namespace: 'default' },
      },
    ],
    'current-context': 'portico-local',
    preferences: {},
  });
}

/** Starts the API server and resolves once it accepts connections. */
export async function startApiServer(options: ApiServerOptions = {}): Promise<ApiServer> {
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'portico-apiserver-')));
  await mkdir(dataDir, { recursive: true });
  const certificates = await ensureServingCertificates(dataDir);
  const token = options.token ?? (await dataDirToken(dataDir));
  const store = new ObjectStore(options.historyWindow ?? 10_000);
  const catalog = new ResourceCatalog();
  const [tables, openapi, admission] = await Promise.all([
    optionalModule('./tables.ts'),
    optionalModule('./openapi.ts'),
    optionalModule('./admission.ts'),
  ]);
  const registry = new Registry(
    store,
    catalog,
    typeof admission?.admit === 'function' ? (admission.admit as AdmissionHook) : undefined,
  );
  const controllers = new InProcessControllers(registry);
  const loaded = options.snapshotPath !== undefined && (await store.loadSnapshot(options.snapshotPath));
  if (loaded) controllers.resync();
  else {
    const namespaces = catalog.find('', 'v1', 'namespaces')!;
    for (const name of BOOTSTRAP_NAMESPACES) {
      await registry.create(namespaces, '', { metadata: { name } }, { dryRun: false, user: SYSTEM_USER });
    }
  }
  let openApi: OpenApiProvider | undefined;
  if (typeof openapi?.openApiV3Index === 'function' && typeof openapi.openApiV3Document === 'function') {
    const index = openapi.openApiV3Index as (r: readonly ResourceType[]) => object;
    const document = openapi.openApiV3Document as (
      r: readonly ResourceType[],
      g: string,
      v: string,
    ) => object | undefined;
    openApi = { index, document };
  }
  let url = '';
  let handler: ReturnType<typeof createRequestHandler> | undefined;
  const faults = new FaultInjector({
    dropWatches: () => handler?.dropWatches(),
    compactHistory: () => store.compact(),
    resumed: () => handler?.flushWatches(),
  });
  handler = createRequestHandler({
    registry,
    catalog,
    faults,
    token,
    serverAddress: () => url.replace(/^https:\/\//, ''),
    toTable: typeof tables?.toTable === 'function' ? (tables.toTable as TableConverter) : undefined,
    openApi,
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 5000,
    maxWatchSeconds: options.maxWatchSeconds ?? 1800,
  });
  const requestHandler = handler;
  const server: Server = createServer(
    { key: certificates.keyPem, cert: certificates.certPem, keepAlive: true },
    (req, res) => requestHandler.handle(req, res),
  );
  // Idle keep-alive connections outlive the clients' own idle timeouts (Go's is 90 s, undici's
  // follows the Keep-Alive header), so a client never writes into a socket the server just closed.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const kubeconfigPath = join(dataDir, 'kubeconfig');
  await writeFile(kubeconfigPath, kubeconfig(url, certificates.caPem, token), { mode: 0o600 });
  let snapshotTimer: NodeJS.Timeout | undefined;
  if (
    options.snapshotPath !== undefined &&
    options.snapshotIntervalMs !== undefined &&
    options.snapshotIntervalMs > 0
  ) {
    const path = options.snapshotPath;
    let savedRevision = store.currentRevision();
    snapshotTimer = setInterval(() => {
      const revision = store.currentRevision();
      if (revision === savedRevision) return;
      savedRevision = revision;
      store
        .saveSnapshot(path)
        .catch((err: unknown) => process.emitWarning(`portico apiserver snapshot: ${String(err)}`));
    }, options.snapshotIntervalMs);
    snapshotTimer.unref();
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    kubeconfigPath,
    token,
    caPem: certificates.caPem,
    faults,
    store,
    registry,
    controllersIdle: () => controllers.idle(),
    close() {
      closing ??= (async () => {
        if (snapshotTimer) clearInterval(snapshotTimer);
        if (faults.paused) faults.resume();
        controllers.stop();
        requestHandler.dropWatches();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        if (options.snapshotPath !== undefined) await store.saveSnapshot(options.snapshotPath);
        if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
