/**
 * Runs inside a node namespace: listens on 127.0.0.1:<port> there and passes each connection to
 * a unix socket whose other end (in the host namespace) reaches the local API server. Unix
 * sockets live in the file system, not in a network namespace, so the node's agent reaches the
 * API server at the very address its kubeconfig names (TLS included) and nothing is added to the
 * host's network.
 *
 * Usage: node e2e/local/api-relay.ts <port> <socket path>
 */
import { connect, createServer } from 'node:net';

const [portText, socketPath] = process.argv.slice(2);
const port = Number(portText);
if (!Number.isInteger(port) || socketPath === undefined) {
  process.stderr.write('usage: api-relay.ts <port> <socket path>\n');
  process.exit(2);
}
const server = createServer((client) => {
  const upstream = connect(socketPath);
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(port, '127.0.0.1', () => process.stdout.write('READY\n'));
process.once('SIGTERM', () => process.exit(0));
