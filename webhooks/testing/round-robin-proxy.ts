import net from 'node:net';

/**
 * A TCP round-robin balancer for tests: each connection goes to the next backend port on
 * 127.0.0.1, skipping backends that refuse (a killed replica), as a Service's endpoints do once
 * the dead pod is removed. TLS passes through untouched, so every replica serves the same
 * certificate.
 */
export class RoundRobinProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #backends: number[];
  #next = 0;

  private constructor(server: net.Server, backends: number[]) {
    this.#server = server;
    this.#backends = backends;
  }

  /** Starts listening on an ephemeral port of 127.0.0.1. */
  static async start(backends: readonly number[]): Promise<RoundRobinProxy> {
    const server = net.createServer();
    const proxy = new RoundRobinProxy(server, [...backends]);
    server.on('connection', (client) => proxy.#forward(client, 0));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** The port to send traffic to. */
  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** Replaces the backend list (a restarted replica on a new port). */
  setBackends(backends: readonly number[]): void {
    this.#backends = [...backends];
  }

  #forward(client: net.Socket, attempt: number): void {
    if (this.#backends.length === 0 || attempt >= this.#backends.length) {
      client.destroy();
      return;
    }
    const port = this.#backends[this.#next++ % this.#backends.length]!;
    const upstream = net.connect(port, '127.0.0.1');
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('error', () => {
      if (!connected) this.#forward(client, attempt + 1);
      else client.destroy();
    });
    client.on('error', () => upstream.destroy());
    client.on('close', () => {
      this.#sockets.delete(client);
      if (connected) upstream.destroy();
    });
    upstream.on('close', () => {
      this.#sockets.delete(upstream);
      if (connected) client.destroy();
    });
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
