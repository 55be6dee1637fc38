/**
 * Health check node port servers: one HTTP server per LoadBalancer Service with
 * externalTrafficPolicy Local, on its healthCheckNodePort. External balancers probe it to learn
 * which nodes have a local endpoint; 503 makes them stop sending to (drain) the node.
 */
import { createServer, type Server } from 'node:http';
import type { ServicePortState } from '../state/types.ts';
import { writeJson } from './proxy-health.ts';

/** What one health check port reports. */
export interface ServiceHealth {
  readonly namespace: string;
  readonly name: string;
  readonly port: number;
  /**
   * Ready endpoints on this node. Serving-but-terminating ones still carry traffic during a
   * rolling update but do not count, so the node fails the check and balancers drain it.
   */
  readonly localEndpoints: number;
}

/** The health check ports a desired state asks for, keyed by `namespace/name`. */
export function serviceHealthChecks(ports: readonly ServicePortState[]): Map<string, ServiceHealth> {
  const checks = new Map<string, ServiceHealth>();
  for (const port of ports) {
    if (port.healthCheckNodePort === 0) continue;
    const ready = port.endpoints.filter((endpoint) => endpoint.isLocal && endpoint.ready).length;
    const previous = checks.get(port.serviceKey);
    const [namespace = '', name = ''] = port.serviceKey.split('/');
    // A Service's ports share one health check; its endpoints are the same pods on each port.
    checks.set(port.serviceKey, {
      namespace,
      name,
      port: port.healthCheckNodePort,
      localEndpoints: Math.max(previous?.localEndpoints ?? 0, ready),
    });
  }
  return checks;
}

interface RunningServer {
  readonly server: Server;
  health: ServiceHealth;
}

/** Opens, updates and closes the health check servers to match the latest desired state. */
export class ServiceHealthServers {
  readonly #host: string;
  readonly #proxyHealthy: () => boolean;
  readonly #onListenError: (health: ServiceHealth, error: Error) => void;
  readonly #servers = new Map<string, RunningServer>();

  /**
   * @param host address to listen on ('' for all of the node's addresses)
   * @param proxyHealthy the agent's own health; a stale agent fails every Service's check too
   * @param onListenError told when a port cannot be opened (kube-proxy records an Event)
   */
  constructor(
    host: string,
    proxyHealthy: () => boolean,
    onListenError: (health: ServiceHealth, error: Error) => void,
  ) {
    this.#host = host;
    this.#proxyHealthy = proxyHealthy;
    this.#onListenError = onListenError;
  }

  /** Applies the wanted set: new ports are opened, gone ones closed, counts updated in place. */
  async sync(wanted: ReadonlyMap<string, ServiceHealth>): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, running] of this.#servers) {
      const next = wanted.get(key);
      if (next !== undefined && next.port === running.health.port) continue;
      this.#servers.delete(key);
      closing.push(new Promise((resolve) => running.server.close(() => resolve())));
      running.server.closeAllConnections();
    }
    await Promise.all(closing);
    for (const [key, health] of wanted) {
      const running = this.#servers.get(key);
      if (running !== undefined) {
        running.health = health;
        continue;
      }
      await this.#open(key, health);
    }
  }

  /** Closes every server. */
  async close(): Promise<void> {
    await this.sync(new Map());
  }

  async #open(key: string, health: ServiceHealth): Promise<void> {
    const entry: RunningServer = {
      health,
      server: createServer((_request, response) => {
        const current = entry.health;
        const proxyHealthy = this.#proxyHealthy();
        writeJson(response, current.localEndpoints > 0 && proxyHealthy ? 200 : 503, {
          service: { namespace: current.namespace, name: current.name },
          localEndpoints: current.localEndpoints,
          serviceProxyHealthy: proxyHealthy,
        });
      }),
    };
    try {
      await new Promise<void>((resolve, reject) => {
        entry.server.once('error', reject);
        entry.server.listen(health.port, this.#host === '' ? undefined : this.#host, () => resolve());
      });
      this.#servers.set(key, entry);
    } catch (error) {
      this.#onListenError(health, error instanceof Error ? error : new Error(String(error)));
    }
  }
}
