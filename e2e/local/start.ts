/**
 * `npm start`. With a kubeconfig (`--kubeconfig PATH` or `KUBECONFIG`) it runs the
 * controller-manager against that cluster, passing every flag through. Without one it runs the
 * embedded local cluster: the local API server, N nodes with kubelets, the scheduler and workload
 * controllers, and (unless `--no-dataplane`) pods in network namespaces; then Portico itself on
 * it: the controller-manager with its admission webhooks and one agent per node namespace.
 * Writes the kubeconfig to `.portico/local/kubeconfig`, prints what to do next, then `READY`.
 * SIGINT or SIGTERM stops everything and removes the run's namespaces.
 *
 * Local cluster flags: see {@link localStartUsage} (`--help` prints it).
 */
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../../controllers/runtime/logging.ts';
import { startApiServer } from '../apiserver/index.ts';
import { LocalCluster } from './cluster.ts';
import { defaultNodeCidrPlan, maxNodes, planNodePodCidrs } from './netns.ts';
import { startPortico } from './portico.ts';
import { KubeRest } from './rest.ts';

const PROXY_MODES = ['iptables', 'nftables', 'ipvs'];

/** What `--help` prints: the local cluster's flags. */
export const localStartUsage = `Usage: npm start -- [flags]   (without a kubeconfig: the embedded local cluster)

  --no-dataplane              control-plane mode: pods get IPs and status but no network
                              namespaces; runs without root
  --nodes N                   simulated nodes (default 2, at most ${maxNodes}; the pod range must hold
                              a pod CIDR for each)
  --pod-cidr CIDR             range the nodes' pod CIDRs are carved from, like kube-controller-manager's
                              --cluster-cidr (default ${defaultNodeCidrPlan.podCidr}); with the dataplane it
                              must lie inside 198.18.0.0/16 and node CIDRs must stay below the LAN
                              198.18.255.0/24; with --no-dataplane any IPv4 range (e.g. 10.0.0.0/8)
  --node-cidr-mask-size N     prefix length of each node's pod CIDR (default ${defaultNodeCidrPlan.nodeCidrMaskSize}):
                              node i gets the i-th subnet of that size; /24 holds 253 pods, /20 4093
  --data-dir DIR              kubeconfig, certificates and logs (default .portico/local)
  --proxy-mode MODE           iptables, nftables or ipvs (default iptables)
  --log-level LEVEL           error, warn, info or debug (default warn)
  --help, -h                  print this and exit

With --kubeconfig PATH (or KUBECONFIG set) it runs the controller-manager against that cluster
instead, passing every flag through.
`;

/** Parsed command line of {@link runLocalCluster}. */
export interface LocalStartOptions {
  readonly dataplane: boolean;
  readonly nodes: number;
  readonly podCidr: string;
  readonly nodeCidrMaskSize: number;
  readonly dataDir: string;
  readonly logLevel: string;
  readonly proxyMode: string;
}

/** Parses the flags; errors name the flag and what it accepts. */
export function parseLocalStartArgs(args: readonly string[]): LocalStartOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      'no-dataplane': { type: 'boolean', default: false },
      nodes: { type: 'string', default: '2' },
      'pod-cidr': { type: 'string', default: defaultNodeCidrPlan.podCidr },
      'node-cidr-mask-size': { type: 'string', default: String(defaultNodeCidrPlan.nodeCidrMaskSize) },
      'data-dir': { type: 'string', default: join('.portico', 'local') },
      'log-level': { type: 'string', default: 'warn' },
      'proxy-mode': { type: 'string', default: 'iptables' },
    },
  });
  if (!PROXY_MODES.includes(values['proxy-mode'])) {
    throw new Error(
      `--proxy-mode: Unsupported value: "${values['proxy-mode']}": supported values: ${PROXY_MODES.map((m) => `"${m}"`).join(', ')}`,
    );
  }
  const nodes = integerFlag('--nodes', values.nodes);
  const nodeCidrMaskSize = integerFlag('--node-cidr-mask-size', values['node-cidr-mask-size']);
  const dataplane = values['no-dataplane'] !== true;
  // Checked here so a bad combination fails before anything starts.
  planNodePodCidrs(nodes, { podCidr: values['pod-cidr'], nodeCidrMaskSize }, dataplane);
  return {
    dataplane,
    nodes,
    podCidr: values['pod-cidr'],
    nodeCidrMaskSize,
    dataDir: values['data-dir'],
    logLevel: values['log-level'],
    proxyMode: values['proxy-mode'],
  };
}

function integerFlag(flag: string, text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new Error(`${flag}: Invalid value: "${text}": must be an integer`);
  return Number(text);
}

/** What to print once the cluster serves: how to use it with kubectl and how to reach pods. */
export function nextSteps(kubeconfigPath: string, cluster: LocalCluster): string {
  const fromHere = relative(process.cwd(), kubeconfigPath);
  const shown = fromHere === '' || fromHere.startsWith('..') ? kubeconfigPath : fromHere;
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
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(localStartUsage);
    return;
  }
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
      podCidr: options.podCidr,
      nodeCidrMaskSize: options.nodeCidrMaskSize,
      dataplane: options.dataplane,
    });
  } catch (error) {
    await server.close();
    throw error;
  }
  const rest = new KubeRest(kubeConfig);
  let portico: Awaited<ReturnType<typeof startPortico>>;
  try {
    portico = await startPortico({
      cluster,
      rest,
      apiServerUrl: server.url,
      kubeconfigPath: server.kubeconfigPath,
      dataDir,
      proxyMode: options.proxyMode,
      logLevel: options.logLevel,
    });
  } catch (error) {
    rest.close();
    await cluster.stop();
    await server.close();
    throw error;
  }
  process.stdout.write(nextSteps(server.kubeconfigPath, cluster));
  process.stdout.write(`  component logs: ${portico.logFiles.join(', ')}\n`);
  process.stdout.write('READY\n');
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`portico: ${signal}: stopping the local cluster\n`);
      portico
        .stop()
        .then(() => rest.close())
        .then(() => cluster.stop())
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

/**
 * With a kubeconfig given, `npm start` is the controller-manager against that cluster: this
 * process hands over to it (same flags, same stdio) and exits with its status.
 */
function runControllerManager(args: readonly string[]): void {
  const script = new URL('../../controllers/portico-controller-manager.ts', import.meta.url).pathname;
  process.stderr.write('portico: kubeconfig given: running the controller-manager against that cluster\n');
  const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)));
}

/** True when the command line or the environment names a kubeconfig. */
export function kubeconfigGiven(args: readonly string[], env: NodeJS.ProcessEnv): boolean {
  const flag = args.some((arg) => arg === '--kubeconfig' || arg.startsWith('--kubeconfig='));
  return flag || (env['KUBECONFIG'] ?? '').split(':').some((path) => path !== '');
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  if (kubeconfigGiven(args, process.env)) {
    runControllerManager(args);
  } else {
    runLocalCluster(args).catch((error: unknown) => {
      process.stderr.write(`portico: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    });
  }
}
