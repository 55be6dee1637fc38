/**
 * `npm run apiserver`: starts the local API server and prints `KUBECONFIG=<path>` once it serves.
 * Flags: --port N, --data-dir DIR, --snapshot FILE (load on start, save every 5 s while objects change
 * and on SIGINT/SIGTERM), --history-window N.
 */

import { parseArgs } from 'node:util';
import { type ApiServerOptions, startApiServer } from './index.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'data-dir': { type: 'string' },
    snapshot: { type: 'string' },
    'history-window': { type: 'string' },
  },
});
const options: ApiServerOptions = {};
if (values.port !== undefined) options.port = Number(values.port);
if (values['data-dir'] !== undefined) options.dataDir = values['data-dir'];
if (values.snapshot !== undefined) {
  options.snapshotPath = values.snapshot;
  options.snapshotIntervalMs = 5000;
}
if (values['history-window'] !== undefined) options.historyWindow = Number(values['history-window']);

const server = await startApiServer(options);
process.stdout.write(`KUBECONFIG=${server.kubeconfigPath}\n`);
process.stderr.write(`portico local API server serving at ${server.url}\n`);
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`portico apiserver: ${String(err)}\n`);
        process.exit(1);
      },
    );
  });
}
