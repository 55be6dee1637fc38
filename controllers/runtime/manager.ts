/**
 * The process-level lifecycle of a controller manager: informers, leader election, controllers,
 * and the health/metrics HTTP endpoints, started and stopped in a fixed order.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import type { ManagedInformer } from './informer.ts';
import { describeError } from './kube.ts';
import { type LeaderElectionTiming, LeaderElector } from './leader-election.ts';
import { errorFields, type Logger } from './logging.ts';
import { getOrCreateGauge, METRIC_PREFIX, renderMetrics } from './metrics.ts';

/** The parts of a controller the manager drives; {@link Controller} from controller.ts fits. */
export interface ManagedController {
  /** Name for logs. */
  readonly name: string;
  /** Starts reconciling. Called at most once, after every informer has synced and only on the leader. */
  run(): void;
  /** Stops reconciling, waiting up to `timeoutMs` for reconciles in flight. */
  stop(timeoutMs?: number): Promise<boolean>;
}

/** A host and port to listen on; host '' means every interface. */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Parses a `host:port` flag value such as `:8081`, `127.0.0.1:0` or `[::1]:8080`. Errors are
 * phrased like Kubernetes flag validation: `--health-addr: Invalid value: "x": must be host:port`.
 */
export function parseListenAddress(value: string, flag: string): ListenAddress {
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port > 65535) {
    throw new Error(
      `${flag}: Invalid value: ${JSON.stringify(value)}: must be host:port with a port from 0 to 65535 (e.g. ":8081" or "127.0.0.1:8081")`,
    );
  }
  return { host: match[1] ?? match[2] ?? '', port };
}

/** Leader election settings of {@link Manager}. */
export interface ManagerLeaderElection {
  /** Namespace of the Lease. */
  namespace: string;
  /** Name of the Lease. */
  leaseName: string;
  /** Candidate identity; hostname plus a random suffix when absent. */
  identity?: string;
  /** Timing; the kube-controller-manager defaults when absent. */
  timing?: LeaderElectionTiming;
}

/** Options of {@link Manager}. */
export interface ManagerOptions {
  /** Credentials for leader election. */
  kubeConfig: KubeConfig;
  /** Process logger. */
  logger: Logger;
  /** Leader election; when absent, controllers run as soon as the caches have synced. */
  leaderElection?: ManagerLeaderElection;
  /** Where `/healthz` and `/readyz` are served. */
  healthAddress: ListenAddress;
  /** Where `/metrics` is served; the health server serves it too when this is absent or the same address. */
  metricsAddress?: ListenAddress;
  /** Upper bound of a shutdown, split between its steps; default 10 s. */
  shutdownTimeoutMs?: number;
}

/** Why a manager finished. `lost-leadership` should end the process with a non-zero status. */
export type ManagerExitReason = 'stopped' | 'lost-leadership';

const leaderGauge = () =>
  getOrCreateGauge({
    name: `${METRIC_PREFIX}leader_election_is_leader`,
    help: '1 while this replica holds the leader election lease (and runs the controllers), else 0.',
    labelNames: ['lease'],
  });

/**
 * Owns the informers and controllers of one process.
 *
 * Start order: HTTP endpoints, informers, leader election; on becoming leader (or at once without
 * leader election) wait for every informer to sync, then run the controllers. Stop order:
 * controllers, lease release, informers, HTTP endpoints, so that a standby can take over as soon
 * as our controllers can no longer write, and health probes answer until the very end.
 *
 * Standby replicas keep their caches warm and report ready: readiness is about caches, not
 * leadership, so a standby still serves (for example) admission webhooks.
 */
export class Manager {
  readonly #options: ManagerOptions;
  readonly #logger: Logger;
  readonly #informers: ManagedInformer[] = [];
  readonly #controllers: ManagedController[] = [];
  readonly #servers: http.Server[] = [];
  readonly #elector: LeaderElector | undefined;
  readonly #leaseLabel: string;
  readonly #electionAbort = new AbortController();
  readonly #syncAbort = new AbortController();
  #controllersRunning = false;
  #started = false;
  #stopping: Promise<void> | undefined;
  #exitReason: ManagerExitReason = 'stopped';
  #resolveDone!: (reason: ManagerExitReason) => void;
  /** Settles once the manager has fully stopped, with the reason. */
  readonly done: Promise<ManagerExitReason>;

  constructor(options: ManagerOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    const election = options.leaderElection;
    this.#leaseLabel = election ? `${election.namespace}/${election.leaseName}` : 'none';
    if (election) {
      this.#elector = new LeaderElector({
        kubeConfig: options.kubeConfig,
        namespace: election.namespace,
        leaseName: election.leaseName,
        identity: election.identity,
        timing: election.timing,
        logger: options.logger,
        onStartedLeading: () => this.#onStartedLeading(),
      });
    }
    leaderGauge().labels({ lease: this.#leaseLabel }).set(0);
  }

  /** The leader election identity, or undefined without leader election. */
  get identity(): string | undefined {
    return this.#elector?.identity;
  }

  /** Adds an informer; it is started by {@link start} and must sync before controllers run. */
  addInformer(informer: ManagedInformer): void {
    if (this.#started) {
      throw new Error(`informer ${informer.name} added after the manager started`);
    }
    this.#informers.push(informer);
  }

  /** Adds a controller; it runs only on the leader, after every informer has synced. */
  addController(controller: ManagedController): void {
    if (this.#started) {
      throw new Error(`controller ${controller.name} added after the manager started`);
    }
    this.#controllers.push(controller);
  }

  /** True once every informer has synced (true at once with no informers). */
  isReady(): boolean {
    return this.#informers.every((informer) => informer.hasSynced());
  }

  /** True while this replica leads (always true without leader election, once controllers run). */
  isLeader(): boolean {
    return this.#elector ? this.#elector.isLeader() : this.#controllersRunning;
  }

  /** The addresses the HTTP servers actually bound (useful with port 0). */
  addresses(): ListenAddress[] {
    return this.#servers.map((server) => {
      const address = server.address() as AddressInfo;
      return { host: address.address, port: address.port };
    });
  }

  /** Binds the HTTP endpoints, starts informers and leader election. Resolves once listening. */
  async start(): Promise<void> {
    if (this.#started) {
      throw new Error('manager already started');
    }
    this.#started = true;
    const { healthAddress, metricsAddress } = this.#options;
    const shared =
      metricsAddress === undefined ||
      // Port 0 means "any free port", so two such addresses are two servers.
      (metricsAddress.host === healthAddress.host &&
        metricsAddress.port === healthAddress.port &&
        metricsAddress.port !== 0);
    await this.#listen(healthAddress, shared ? 'health and metrics' : 'health');
    if (!shared) {
      await this.#listen(metricsAddress, 'metrics');
    }
    for (const informer of this.#informers) {
      informer.start();
    }
    if (this.#elector) {
      void this.#elector.run(this.#electionAbort.signal).then(
        (outcome) => {
          if (outcome === 'lost') {
            this.#exitReason = 'lost-leadership';
            void this.stop();
          }
        },
        (error: unknown) => {
          this.#logger.error('leader election failed', errorFields(error));
          this.#exitReason = 'lost-leadership';
          void this.stop();
        },
      );
    } else {
      this.#onStartedLeading();
    }
  }

  /**
   * Shuts down in order (controllers, lease, informers, HTTP) within the shutdown timeout.
   * Idempotent: later calls return the first call's promise.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutDown();
    return this.#stopping;
  }

  async #shutDown(): Promise<void> {
    const totalMs = this.#options.shutdownTimeoutMs ?? 10_000;
    const deadline = Date.now() + totalMs;
    const remaining = (share: number) => Math.max(0, Math.min(totalMs * share, deadline - Date.now()));
    this.#logger.info('shutting down', { reason: this.#exitReason });
    this.#syncAbort.abort();
    this.#electionAbort.abort();
    if (this.#controllersRunning) {
      this.#controllersRunning = false;
      const budget = remaining(0.5);
      await Promise.all(
        this.#controllers.map((controller) =>
          controller.stop(budget).catch((error: unknown) => {
            this.#logger.error('controller failed to stop', {
              controller: controller.name,
              ...errorFields(error),
            });
            return false;
          }),
        ),
      );
    }
    leaderGauge().labels({ lease: this.#leaseLabel }).set(0);
    if (this.#elector && this.#exitReason !== 'lost-leadership') {
      await this.#elector.release(Math.max(remaining(0.3), 1));
    }
    await withDeadline(Promise.all(this.#informers.map((informer) => informer.stop())), remaining(0.1), () =>
      this.#logger.warn('informers did not stop in time'),
    );
    await withDeadline(
      Promise.all(this.#servers.map((server) => closeServer(server))),
      Math.max(remaining(1), 100),
      () => {
        for (const server of this.#servers) {
          server.closeAllConnections();
        }
      },
    );
    this.#logger.info('stopped', { reason: this.#exitReason });
    this.#resolveDone(this.#exitReason);
  }

  #onStartedLeading(): void {
    leaderGauge().labels({ lease: this.#leaseLabel }).set(1);
    void Promise.all(this.#informers.map((informer) => informer.waitForSync(this.#syncAbort.signal))).then(
      () => {
        if (this.#stopping !== undefined || (this.#elector !== undefined && !this.#elector.isLeader())) {
          return;
        }
        this.#controllersRunning = true;
        this.#logger.info('caches synced; starting controllers', { controllers: this.#controllers.length });
        for (const controller of this.#controllers) {
          controller.run();
        }
      },
      () => undefined,
    );
  }

  #listen(address: ListenAddress, purpose: string): Promise<void> {
    const server = http.createServer((request, response) => {
      this.#serve(request, response).catch((error: unknown) => {
        this.#logger.error('health/metrics request failed', errorFields(error));
        if (!response.headersSent) {
          response.writeHead(500);
        }
        response.end();
      });
    });
    this.#servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', (error) =>
        reject(
          new Error(
            `cannot listen on ${address.host}:${address.port} for ${purpose}: ${describeError(error)}`,
          ),
        ),
      );
      server.listen(address.port, address.host === '' ? undefined : address.host, () => {
        const bound = server.address() as AddressInfo;
        this.#logger.info(`serving ${purpose}`, { address: bound.address, port: bound.port });
        resolve();
      });
    });
  }

  async #serve(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (path === '/healthz' || path === '/livez') {
      response.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      return;
    }
    if (path === '/readyz') {
      const pending = this.#informers
        .filter((informer) => !informer.hasSynced())
        .map((informer) => informer.name);
      if (pending.length === 0 && this.#stopping === undefined) {
        response.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      } else {
        const why =
          this.#stopping !== undefined ? 'shutting down' : `caches not synced: ${pending.join(', ')}`;
        response.writeHead(503, { 'Content-Type': 'text/plain' }).end(why);
      }
      return;
    }
    if (path === '/metrics') {
      const { contentType, body } = await renderMetrics();
      response.writeHead(200, { 'Content-Type': contentType }).end(body);
      return;
    }
    response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  }
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    // Keep-alive connections from a scraper would otherwise hold close() open.
    server.closeIdleConnections();
  });
}

async function withDeadline(work: Promise<unknown>, ms: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  const outcome = await Promise.race([work.then(() => 'done' as const), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    onTimeout();
  }
}
