/**
 * Benchmark of the local API server (e2e/apiserver). Prints JSON:
 * - createsPerSecond: HTTPS POSTs of ConfigMaps, 32 in flight: 8 keep-alive TLS connections with 4
 *   pipelined HTTP/1.1 requests each, every answer checked for 201. The client is deliberately lean
 *   (one TLS write per batch, a minimal response parser) so that it measures the server rather than
 *   node:http's client, which costs more CPU per request than the server does;
 * - getsPerSecond: HTTPS GETs of those ConfigMaps the same way, every answer checked for 200;
 * - createsPerSecondNodeHttpsClient, getsPerSecondNodeHttpsClient: the same requests through
 *   node:https with a keep-alive Agent (32 sockets), the figure a client-node controller would see;
 * - watchEventsPerSecond: events delivered to 10 HTTPS watchers while objects are written through
 *   the registry inside the server (so the writer is not the bottleneck of the fan-out measurement).
 * - registryCreatesPerSecond: the same creates through the registry without HTTP, to show how much
 *   of a create is HTTPS handling;
 * The server runs in a worker thread of this file and the clients in the main thread, so each has
 * a core of its own, as a separate API server process would.
 */

import { Agent, request } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { startApiServer } from '../e2e/apiserver/index.ts';

const CREATES = Number(process.env.BENCH_CREATES ?? 5000);
const WATCH_EVENTS = Number(process.env.BENCH_WATCH_EVENTS ?? 20000);
const WATCHERS = 10;
const CONCURRENCY = 32;
const CONNECTIONS = 8;
const PIPELINE_DEPTH = CONCURRENCY / CONNECTIONS;

/**
 * One keep-alive TLS connection carrying pipelined HTTP/1.1 requests: a batch goes out in one write
 * and the answers come back in order (Node's HTTP server answers pipelined requests in order).
 */
class PipelinedConnection {
  readonly socket: TLSSocket;
  private readonly waiting: Array<{ resolve(status: number): void; reject(err: Error): void }> = [];
  private received: Buffer = Buffer.alloc(0);

  constructor(socket: TLSSocket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => {
      for (const request of this.waiting.splice(0)) request.reject(err);
    });
  }

  /** Sends complete HTTP/1.1 requests in one write and resolves with their status codes in order. */
  send(requests: readonly string[]): Promise<number[]> {
    const answers = requests.map(
      () =>
        new Promise<number>((resolve, reject) => {
          this.waiting.push({ resolve, reject });
        }),
    );
    this.socket.write(requests.join(''));
    return Promise.all(answers);
  }

  private receive(chunk: Buffer): void {
    this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
    for (;;) {
      const headerEnd = this.received.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const head = this.received.toString('latin1', 0, headerEnd);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (length === null) {
        this.socket.destroy(new Error(`answer without Content-Length: ${head}`));
        return;
      }
      const end = headerEnd + 4 + Number(length[1]);
      if (this.received.length < end) return;
      this.received = this.received.subarray(end);
      this.waiting.shift()?.resolve(Number(head.slice(9, 12)));
    }
  }
}

/** Opens `count` TLS connections to the server, verified against its CA. */
async function openConnections(server: ServerHandle, count: number): Promise<PipelinedConnection[]> {
  const { hostname, port } = new URL(server.url);
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<PipelinedConnection>((resolve, reject) => {
          const socket = connect({ host: hostname, port: Number(port), ca: server.caPem }, () =>
            resolve(new PipelinedConnection(socket)),
          );
          socket.once('error', reject);
        }),
    ),
  );
}

/** How the main thread reaches the server in the worker. */
interface ServerHandle {
  url: string;
  token: string;
  caPem: string;
}

/** Worker side: serves, and writes objects in-process when asked. */
async function serveInWorker(): Promise<void> {
  const server = await startApiServer({ historyWindow: 1000 });
  const configmaps = server.registry.catalog.find('', 'v1', 'configmaps')!;
  const user = { username: 'bench', groups: [] };
  parentPort!.on(
    'message',
    async (message: { write?: number; registryCreates?: number; close?: boolean }) => {
      if (message.registryCreates !== undefined) {
        const started = performance.now();
        for (let i = 0; i < message.registryCreates; i++) {
          await server.registry.create(
            configmaps,
            'kube-public',
            { metadata: { name: `r-${i}`, labels: { bench: 'yes' } }, data: { index: String(i) } },
            { dryRun: false, user },
          );
        }
        parentPort!.postMessage({
          registryCreatesPerSecond: message.registryCreates / ((performance.now() - started) / 1000),
        });
      }
      if (message.write !== undefined) {
        for (let i = 0; i < message.write; i++) {
          await server.registry.create(
            configmaps,
            'watched',
            { metadata: { name: `w-${i}` }, data: { i: String(i) } },
            { dryRun: false, user },
          );
          if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
      }
      if (message.close) {
        await server.close();
        parentPort!.close();
      }
    },
  );
  parentPort!.postMessage({
    url: server.url,
    token: server.token,
    caPem: server.caPem,
  } satisfies ServerHandle);
}

async function runBenchmark(): Promise<void> {
  const worker = new Worker(new URL(import.meta.url));
  const server = await new Promise<ServerHandle>((resolve) => worker.once('message', resolve));
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: server.caPem });

  const send = (method: string, path: string, body?: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = { Authorization: `Bearer ${server.token}` };
      if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = String(Buffer.byteLength(body));
      }
      const req = request(`${server.url}${path}`, { method, headers, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });

  const inParallel = async (
    count: number,
    work: (i: number) => Promise<number>,
    expected: number,
  ): Promise<number> => {
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < count) {
          const i = next++;
          const status = await work(i);
          if (status !== expected) throw new Error(`request ${i} answered ${status}`);
        }
      }),
    );
    return count / ((performance.now() - started) / 1000);
  };

  const body = (i: number, prefix: string) =>
    JSON.stringify({
      metadata: { name: `${prefix}-${i}`, labels: { bench: 'yes' } },
      data: { index: String(i) },
    });
  const host = new URL(server.url).host;
  const rawRequest = (method: string, path: string, payload?: string): string =>
    payload === undefined
      ? `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${server.token}\r\nAccept: application/json\r\n\r\n`
      : `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${server.token}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`;
  const connections = await openConnections(server, CONNECTIONS);
  const pipelined = async (
    count: number,
    build: (i: number) => string,
    expected: number,
  ): Promise<number> => {
    let next = 0;
    const started = performance.now();
    await Promise.all(
      connections.map(async (connection) => {
        while (next < count) {
          const first = next;
          next = Math.min(count, next + PIPELINE_DEPTH);
          const batch: string[] = [];
          for (let i = first; i < next; i++) batch.push(build(i));
          const statuses = await connection.send(batch);
          const wrong = statuses.findIndex((status) => status !== expected);
          if (wrong >= 0) throw new Error(`request ${first + wrong} answered ${statuses[wrong]}`);
        }
      }),
    );
    return count / ((performance.now() - started) / 1000);
  };
  const createsPerSecond = await pipelined(
    CREATES,
    (i) => rawRequest('POST', '/api/v1/namespaces/default/configmaps', body(i, 'cm')),
    201,
  );
  const getsPerSecond = await pipelined(
    CREATES,
    (i) => rawRequest('GET', `/api/v1/namespaces/default/configmaps/cm-${i}`),
    200,
  );
  for (const connection of connections) connection.socket.end();
  const createsPerSecondNodeHttpsClient = await inParallel(
    CREATES,
    (i) => send('POST', '/api/v1/namespaces/default/configmaps', body(i, 'node-client')),
    201,
  );
  const getsPerSecondNodeHttpsClient = await inParallel(
    CREATES,
    (i) => send('GET', `/api/v1/namespaces/default/configmaps/node-client-${i}`),
    200,
  );

  worker.postMessage({ registryCreates: CREATES });
  const { registryCreatesPerSecond } = await new Promise<{ registryCreatesPerSecond: number }>((resolve) =>
    worker.once('message', resolve),
  );

  await send('POST', '/api/v1/namespaces', JSON.stringify({ metadata: { name: 'watched' } }));
  const received: number[] = new Array(WATCHERS).fill(0);
  let allDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  await Promise.all(
    Array.from(
      { length: WATCHERS },
      (_, w) =>
        new Promise<void>((resolve, reject) => {
          const req = request(
            `${server.url}/api/v1/namespaces/watched/configmaps?watch=true`,
            { headers: { Authorization: `Bearer ${server.token}` }, ca: server.caPem },
            (res) => {
              resolve();
              res.on('data', (chunk: Buffer) => {
                for (const byte of chunk) if (byte === 10) received[w]!++;
                if (received.every((n) => n >= WATCH_EVENTS)) allDone();
              });
            },
          );
          req.on('error', reject);
          req.end();
        }),
    ),
  );
  const started = performance.now();
  worker.postMessage({ write: WATCH_EVENTS });
  await done;
  const watchEventsPerSecond = (WATCH_EVENTS * WATCHERS) / ((performance.now() - started) / 1000);

  process.stdout.write(
    `${JSON.stringify(
      {
        createsPerSecond: Math.round(createsPerSecond),
        getsPerSecond: Math.round(getsPerSecond),
        createsPerSecondNodeHttpsClient: Math.round(createsPerSecondNodeHttpsClient),
        getsPerSecondNodeHttpsClient: Math.round(getsPerSecondNodeHttpsClient),
        watchEventsPerSecond: Math.round(watchEventsPerSecond),
        registryCreatesPerSecond: Math.round(registryCreatesPerSecond),
        watchers: WATCHERS,
        objects: CREATES,
        watchEventsPerWatcher: WATCH_EVENTS,
        concurrency: CONCURRENCY,
      },
      null,
      2,
    )}\n`,
  );
  agent.destroy();
  worker.postMessage({ close: true });
  await new Promise((resolve) => worker.once('exit', resolve));
  process.exit(0);
}

if (isMainThread) await runBenchmark();
else await serveInWorker();
