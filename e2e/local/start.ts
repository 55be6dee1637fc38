/**
 * The embedded local cluster behind `npm start`: the local API server, N nodes with kubelets, the
 * scheduler and workload controllers, and (unless `--no-dataplane`) pods in network namespaces.
 * Writes the kubeconfig to `.portico/local/kubeconfig`, prints what to do next, then `READY`.
 * SIGINT or SIGTERM stops everything and removes the run's namespaces.
 *
 * Flags: --no-dataplane, --nodes N (default 2), --data-dir DIR (default .portico/local),
 * --log-level LEVEL (default warn).
 */
import { mkdir } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../controllers/runtime/logging.ts';
import { startApiServer } from '../apiserver/index.ts';
import { LocalCluster } from './cluster.ts';

/** Parsed command line of {@link runLocalCluster}. */
export interface LocalStartOptions {
  readonly dataplane: boolean;
  readonly nodes: number;
  readonly dataDir: string;
  readonly logLevel: string;
}

/** Parses the flags; errors name the flag and what it accepts. */
export function parseLocalStartArgs(args: readonly string[]): LocalStartOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      'no-dataplane': { type: 'boolean', default: false },
      nodes: { type: 'string', default: '2' },
      'data-dir': { type: 'string', default: join('.portico', 'local') },
      'log-level': { type: 'string', default: 'warn' },
    },
  });
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 250) {
    throw new Error(`--nodes: Invalid value: "${values.nodes}": must be an integer from 1 to 250`);
  }
  return {
    dataplane: values['no-dataplane'] !== true,
    nodes,
    dataDir: values['data-dir'],
    logLevel: values['log-level'],
  };
}

/** What to print once the cluster serves: how to use it with kubectl and how to reach pods. */
export function nextSteps(kubeconfigPath: string, cluster: LocalCluster): string {
  const shown = relative(process.cwd(), kubeconfigPath) || kubeconfigPath;
  const lines = [
    `portico local cluster: ${cluster.nodes.length} node(s), ${cluster.dataplane ? 'dataplane' : 'control-plane only'}`,
    `  export KUBECONFIG=${shown}`,
    '  kubectl apply -f examples/clusterip-demo/',
    '  kubectl get pods -o wide',
  ];
  if (cluster.client !== undefined) {
    lines.push(
      '  reach a pod or ClusterIP from the LAN client namespace:',
      `    ip netns exec ${cluster.client.namespace} curl -s http://<pod-or-cluster-ip>:<port>/`,
      '  or from a node namespace:',
      `    ip netns exec ${cluster.dataplane?.nodes[0]?.namespace ?? '<node-namespace>'} curl -s http://<ip>:<port>/`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Runs the local cluster until SIGINT or SIGTERM. */
export async function runLocalCluster(args: readonly string[]): Promise<void> {
  const options = parseLocalStartArgs(args);
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });
  const server = await startApiServer({ dataDir });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(server.kubeconfigPath);
  let cluster: LocalCluster;
  try {
    cluster = await LocalCluster.start({
      kubeConfig,
      logger: createLogger({ level: options.logLevel, fields: { component: 'local-cluster' } }),
      nodeCount: options.nodes,
      dataplane: options.dataplane,
    });
  } catch (error) {
    await server.close();
    throw error;
  }
  process.stdout.write(nextSteps(server.kubeconfigPath, cluster));
  process.stdout.write('READY\n');
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`portico: ${signal}: stopping the local cluster\n`);
      cluster
        .stop()
        .then(() => server.close())
        .then(
          () => process.exit(0),
          (error: unknown) => {
            process.stderr.write(`portico: stop failed: ${String(error)}\n`);
            process.exit(1);
          },
        );
    });
  }
}

if (import.meta.main) {
  runLocalCluster(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`portico: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
