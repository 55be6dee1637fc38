/**
 * The agent's own health (`/healthz`, `/livez` on `--healthz-bind-address`), as kube-proxy's
 * ProxyHealthServer: healthy while every change that arrived has been synced within the timeout.
 * A node whose agent stopped programming rules reports 503, so load balancers that probe 10256
 * stop sending it traffic.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The clock the tracker reads; tests pass a manual one. */
export type WallClock = () => number;

/**
 * Tracks whether syncs keep up. `queued` marks the time of the oldest change not yet applied;
 * `updated` records a successful sync and clears it.
 */
export class ProxyHealth {
  readonly #timeoutMs: number;
  readonly #now: WallClock;
  #lastUpdated: number | null = null;
  #oldestQueued: number | null = null;
  #nodeEligible = true;

  /**
   * @param timeoutMs how long a change may wait for a sync before the agent counts as unhealthy
   *   (kube-proxy: twice the sync period)
   */
  constructor(timeoutMs: number, now: WallClock = Date.now) {
    this.#timeoutMs = timeoutMs;
    this.#now = now;
  }

  /** A change arrived that a sync must apply. */
  queued(): void {
    if (this.#oldestQueued === null) this.#oldestQueued = this.#now();
  }

  /** A sync succeeded; every change queued before it started has been applied. */
  updated(queuedBefore: number): void {
    this.#lastUpdated = this.#now();
    if (this.#oldestQueued !== null && this.#oldestQueued <= queuedBefore) this.#oldestQueued = null;
  }

  /**
   * False when the node is being removed (deletionTimestamp or the cluster autoscaler's
   * ToBeDeletedByClusterAutoscaler taint): `/healthz` then fails so balancers drain it first.
   */
  setNodeEligible(eligible: boolean): void {
    this.#nodeEligible = eligible;
  }

  /** True when no change has waited longer than the timeout. */
  get healthy(): boolean {
    return this.#oldestQueued === null || this.#now() - this.#oldestQueued < this.#timeoutMs;
  }

  /** The `/healthz` or `/livez` answer. */
  report(withEligibility: boolean): { status: number; body: Record<string, unknown> } {
    const body: Record<string, unknown> = {
      lastUpdated: this.#lastUpdated === null ? '' : new Date(this.#lastUpdated).toISOString(),
      currentTime: new Date(this.#now()).toISOString(),
    };
    let ok = this.healthy;
    if (withEligibility) {
      body['nodeEligible'] = this.#nodeEligible;
      ok &&= this.#nodeEligible;
    }
    return { status: ok ? 200 : 503, body };
  }
}

/** Writes a JSON answer with the headers kube-proxy's health servers set. */
export function writeJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, {
    'Content-Type': 'application/json',
    'X-Content-Type-Options': 'nosniff',
  });
  response.end(JSON.stringify(body));
}

/** Splits `host:port` (IPv6 hosts bracketed) as the bind-address flags take it. */
export function parseBindAddress(value: string, flag: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
  const port = match === null ? Number.NaN : Number(match[3]);
  if (match === null || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`${flag}: Invalid value: "${value}": must be host:port with a port from 0 to 65535`);
  return { host: match[1] ?? match[2] ?? '', port };
}

/** Starts the `/healthz` and `/livez` server; resolves once it listens. */
export async function startProxyHealthServer(
  health: ProxyHealth,
  bind: { host: string; port: number },
): Promise<{ server: Server; port: number }> {
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/livez') {
      const { status, body } = health.report(path === '/healthz');
      writeJson(response, status, body);
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(bind.port, bind.host === '' ? undefined : bind.host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
