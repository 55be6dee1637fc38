/**
 * Shared helpers of the runtime's integration tests: a local API server with clients, polling,
 * and a TCP proxy that can cut a connection in the middle of a chunk of the stream.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { type ApiServer, startApiServer } from '../../../e2e/apiserver/index.ts';
import { createLogger, type Logger } from '../logging.ts';

/**
 * A loopback TCP port that was free a moment ago, for child processes that take a port flag and
 * cannot report an ephemeral one back.
 */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A logger for tests: silent unless PORTICO_TEST_LOG_LEVEL asks for output. */
export function testLogger(): Logger {
  return createLogger({ level: process.env['PORTICO_TEST_LOG_LEVEL'] ?? 'silent' });
}

/** Polls `condition` every 20 ms until it holds; throws with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(20);
  }
}

/** Loads a KubeConfig from a file, optionally pointing it at another server URL (a proxy). */
export function kubeConfigFor(kubeconfigPath: string, serverUrl?: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  if (serverUrl !== undefined) {
    const cluster = kubeConfig.getCurrentCluster()!;
    kubeConfig.clusters = kubeConfig.clusters.map((entry) =>
      entry.name === cluster.name ? { ...entry, server: serverUrl } : entry,
    );
  }
  return kubeConfig;
}

/** Starts the local API server from e2e/apiserver. */
export function startTestApiServer(): Promise<ApiServer> {
  return startApiServer({ bookmarkIntervalMs: 60_000 });
}

/**
 * A TCP proxy in front of the API server. TLS passes through untouched; {@link cutNextChunk}
 * makes the next server-to-client chunk arrive only half and then resets every connection, which
 * is what a client sees when a node or load balancer dies in the middle of a watch event.
 */
export class CuttingProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #cutArmed = false;
  #cuts = 0;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  /** Starts a proxy on 127.0.0.1 forwarding to `targetPort` on 127.0.0.1. */
  static async start(targetPort: number): Promise<CuttingProxy> {
    const server = net.createServer();
    const proxy = new CuttingProxy(server);
    server.on('connection', (client) => proxy.#forward(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** `https://127.0.0.1:<port>` of the proxy. */
  get url(): string {
    return `https://127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  /** How many connections were cut. */
  get cuts(): number {
    return this.#cuts;
  }

  /** Arms a cut: the next chunk from the server is forwarded halfway, then all connections reset. */
  cutNextChunk(): void {
    this.#cutArmed = true;
  }

  #forward(client: net.Socket, targetPort: number): void {
    const upstream = net.connect(targetPort, '127.0.0.1');
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const forget = () => {
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget);
    upstream.on('error', forget);
    client.on('close', forget);
    upstream.on('close', forget);
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      if (!this.#cutArmed) {
        client.write(chunk);
        return;
      }
      this.#cutArmed = false;
      this.#cuts += 1;
      client.write(chunk.subarray(0, Math.max(1, Math.floor(chunk.length / 2))), () => {
        for (const socket of this.#sockets) {
          socket.resetAndDestroy();
        }
      });
    });
  }

  /** Closes the proxy and every connection through it. */
  async close(): Promise<void> {
    for (const socket of this.#sockets) {
      socket.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
