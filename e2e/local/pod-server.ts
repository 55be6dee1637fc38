import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A container port as the pod server needs it. */
export interface ServedPort {
  readonly name?: string;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
}

/** The body every TCP port answers with, as the seeds' demo image does. */
export function hostGreeting(podName: string): string {
  return `<p>The host is ${podName}</p>\n`;
}

/** The path answering 200 for httpGet readiness probes. */
export const healthzPath = '/healthz';

/** A running pod workload: the ports it bound (port 0 resolves to the real one) and how to stop it. */
export interface PodWorkload {
  readonly boundPorts: readonly { readonly protocol: 'TCP' | 'UDP'; readonly port: number }[];
  close(): Promise<void>;
}

/**
 * Parses the ports argument (JSON array of `{name?, port, protocol?}`); errors name the offending
 * entry the way Kubernetes names `spec.containers[0].ports[i]`.
 */
export function parseServedPorts(json: string): ServedPort[] {
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed)) throw new Error(`ports: Invalid value: ${json}: must be a JSON array`);
  return parsed.map((entry: unknown, i): ServedPort => {
    if (typeof entry !== 'object' || entry === null) {
      throw new Error(`ports[${i}]: Invalid value: ${JSON.stringify(entry)}: must be an object`);
    }
    const { name, port, protocol } = entry as Record<string, unknown>;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(
        `ports[${i}].port: Invalid value: ${JSON.stringify(port)}: must be between 1 and 65535`,
      );
    }
    const resolvedProtocol = protocol ?? 'TCP';
    if (resolvedProtocol !== 'TCP' && resolvedProtocol !== 'UDP') {
      throw new Error(
        `ports[${i}].protocol: Unsupported value: ${JSON.stringify(protocol)}: supported values: "TCP", "UDP"`,
      );
    }
    return typeof name === 'string'
      ? { name, port, protocol: resolvedProtocol }
      : { port, protocol: resolvedProtocol };
  });
}

function listenTcp(podName: string, port: number, host: string): Promise<Server> {
  const server = createServer((request, response) => {
    if (request.url === healthzPath) {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('ok\n');
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end(hostGreeting(podName));
  });
  // Probes and curl open short connections; don't let idle keep-alives delay SIGTERM shutdown.
  server.keepAliveTimeout = 1_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

function listenUdp(podName: string, port: number, host: string): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.on('message', (_message, remote) => {
    socket.send(podName, remote.port, remote.address);
  });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => resolve(socket));
  });
}

/**
 * Serves a pod: HTTP with the host greeting on every TCP port, and on every UDP port a reply of
 * the pod name to each datagram. `host` is where to bind (all addresses inside a pod namespace).
 */
export async function servePod(
  podName: string,
  ports: readonly ServedPort[],
  host = '0.0.0.0',
): Promise<PodWorkload> {
  const tcpServers: Server[] = [];
  const udpSockets: Socket[] = [];
  const boundPorts: { protocol: 'TCP' | 'UDP'; port: number }[] = [];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= closeAll();
    return closing;
  };
  const closeAll = async (): Promise<void> => {
    await Promise.all([
      ...tcpServers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
      ...udpSockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))),
    ]);
  };
  try {
    for (const port of ports) {
      if (port.protocol === 'TCP') {
        const server = await listenTcp(podName, port.port, host);
        tcpServers.push(server);
        boundPorts.push({ protocol: 'TCP', port: (server.address() as AddressInfo).port });
      } else {
        const socket = await listenUdp(podName, port.port, host);
        udpSockets.push(socket);
        boundPorts.push({ protocol: 'UDP', port: socket.address().port });
      }
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { boundPorts, close };
}

async function main(): Promise<void> {
  const [podName, portsJson] = process.argv.slice(2);
  if (podName === undefined || portsJson === undefined) {
    process.stderr.write('usage: pod-server.ts <pod-name> <ports-json>\n');
    process.exit(2);
  }
  const workload = await servePod(podName, parseServedPorts(portsJson));
  const stop = (): void => {
    workload.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // The launcher waits for this line before it reports the pod's containers as started.
  process.stdout.write('READY\n');
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(`pod-server: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
