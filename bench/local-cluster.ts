/**
 * Benchmark of the local cluster: time from creating Deployments to all their pods Ready, in
 * control-plane mode (default 1,000 pods) and, when run as root, in dataplane mode (default 100
 * pods over 2 nodes, each pod a namespace and a process). The API server runs in a child process,
 * as kube-apiserver runs apart from the scheduler, kubelets and controllers. Prints one JSON object.
 *
 * Usage: `node bench/local-cluster.ts [controlPlanePods] [dataplanePods]`. Up to 10,000
 * control-plane pods use the default address plan (a /24 per node from 198.18.0.0/16, 250 pods per
 * node); more take 50 nodes with pod CIDRs carved from 10.0.0.0/8, as large as the pods per node
 * need (100,000 pods: /20 per node). Pods come from one Deployment per 1,000 replicas, as a large
 * cluster holds many workloads rather than one huge one.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import { createLogger } from '../controllers/runtime/logging.ts';
import { startApiServer } from '../e2e/apiserver/index.ts';
import { LocalCluster } from '../e2e/local/cluster.ts';
import type { NodeCidrPlan } from '../e2e/local/ipam.ts';
import { defaultNodeCidrPlan, newRunId } from '../e2e/local/netns.ts';
import { KubeRest } from '../e2e/local/rest.ts';

/** Argument that makes this file the API server process of the benchmark. */
const SERVER_FLAG = '--serve-api';
const REPLICAS_PER_DEPLOYMENT = 1_000;
/** Above this many pods the default plan (250 pods per /24 node) gives way to a wider range. */
const DEFAULT_PLAN_MAX_PODS = 10_000;
const LARGE_CLUSTER_NODES = 50;
const TIMEOUT_MS = 1_200_000;
const PROGRESS_INTERVAL_MS = 15_000;

/** One measurement. */
export interface PodsReadyMeasurement {
  readonly mode: 'control-plane' | 'dataplane';
  readonly nodes: number;
  readonly podCidr: string;
  readonly nodeCidrMaskSize: number;
  readonly deployments: number;
  readonly pods: number;
  readonly secondsToAllScheduled: number;
  readonly secondsToAllReady: number;
  readonly podsPerSecond: number;
  /** Peak resident memory of the process running the local cluster (the API server not counted). */
  readonly clusterPeakRssMiB: number;
  /** `/proc/loadavg`'s 1-minute figure at the end, since the machine may be shared. */
  readonly loadAverage1m: number;
}

/** The node count and address plan for `pods` control-plane pods (see the file comment). */
export function controlPlaneLayout(pods: number): { nodes: number; plan: NodeCidrPlan } {
  if (pods <= DEFAULT_PLAN_MAX_PODS) {
    return { nodes: Math.max(2, Math.ceil(pods / 250)), plan: defaultNodeCidrPlan };
  }
  return { nodes: LARGE_CLUSTER_NODES, plan: nodeCidrPlanFor(Math.ceil(pods / LARGE_CLUSTER_NODES)) };
}

/**
 * Pod CIDRs carved from 10.0.0.0/8 (control-plane mode: nothing is routed), each the smallest
 * subnet, at most /24, that holds `podsPerNode` pods.
 */
export function nodeCidrPlanFor(podsPerNode: number): NodeCidrPlan {
  // The network address, gateway and broadcast address are not pods' to take.
  const hostBits = Math.max(8, Math.ceil(Math.log2(podsPerNode + 3)));
  return { podCidr: '10.0.0.0/8', nodeCidrMaskSize: 32 - hostBits };
}

function benchDeployment(name: string, replicas: number): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'web', image: 'demo', ports: [{ name: 'http', containerPort: 80 }] }] },
      },
    },
  };
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Starts the API server in a child process; resolves with its kubeconfig and a way to stop it. */
async function startApiServerProcess(
  dataDir: string,
): Promise<{ kubeconfigPath: string; close: () => Promise<void> }> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [SERVER_FLAG, dataDir], {
    stdio: 'inherit',
  });
  const killChild = () => child.kill('SIGKILL');
  // The benchmark must not leave the server behind, whatever ends it.
  process.once('exit', killChild);
  const [message] = (await once(child, 'message')) as [{ kubeconfigPath: string }];
  return {
    kubeconfigPath: message.kubeconfigPath,
    close: async () => {
      const exited = once(child, 'exit');
      child.send('close');
      await exited;
      process.off('exit', killChild);
    },
  };
}

async function serveApi(dataDir: string): Promise<void> {
  const server = await startApiServer({ dataDir, historyWindow: 100_000 });
  process.on('message', () => {
    server.close().then(() => process.exit(0));
  });
  process.send?.({ kubeconfigPath: server.kubeconfigPath });
}

/** Brings a fresh API server and local cluster up, creates the Deployments and times them to all Ready. */
export async function measurePodsReady(
  mode: 'control-plane' | 'dataplane',
  pods: number,
  nodes: number,
  plan: NodeCidrPlan = defaultNodeCidrPlan,
): Promise<PodsReadyMeasurement> {
  const dataDir = await mkdtemp(join(tmpdir(), 'portico-bench-local-'));
  const server = await startApiServerProcess(dataDir);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(server.kubeconfigPath);
  const rest = new KubeRest(kubeConfig);
  let cluster: LocalCluster | undefined;
  let peakRss = 0;
  let progress: NodeJS.Timeout | undefined;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 500);
  try {
    cluster = await LocalCluster.start({
      kubeConfig,
      logger: createLogger({ level: 'silent' }),
      nodeCount: nodes,
      podCidr: plan.podCidr,
      nodeCidrMaskSize: plan.nodeCidrMaskSize,
      dataplane: mode === 'dataplane',
      runId: newRunId(),
    });
    // Counted from events: listing 100,000 cached pods on every poll would cost more than the pods.
    const ready = new Set<string>();
    const scheduled = new Set<string>();
    const created = new Set<string>();
    const track = (pod: V1Pod) => {
      const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
      created.add(key);
      if (isReady(pod)) ready.add(key);
      else ready.delete(key);
      if (pod.spec?.nodeName) scheduled.add(key);
    };
    cluster.pods.addEventHandler({
      onAdd: track,
      onUpdate: (_old, pod) => track(pod),
      onDelete: (pod) => ready.delete(`${pod.metadata?.namespace}/${pod.metadata?.name}`),
    });
    const deployments = Math.ceil(pods / REPLICAS_PER_DEPLOYMENT);
    const started = performance.now();
    for (let d = 0; d < deployments; d++) {
      const replicas = Math.min(REPLICAS_PER_DEPLOYMENT, pods - d * REPLICAS_PER_DEPLOYMENT);
      await rest.create(
        '/apis/apps/v1/namespaces/default/deployments',
        benchDeployment(`bench-${d}`, replicas),
      );
    }
    let scheduledAt: number | undefined;
    const deadline = Date.now() + TIMEOUT_MS;
    // Progress on stderr (stdout is the JSON), so a long run shows where it is.
    progress = setInterval(() => {
      const at = ((performance.now() - started) / 1000).toFixed(0);
      process.stderr.write(
        `bench/local-cluster: ${at} s: ${created.size} created, ${scheduled.size} scheduled, ${ready.size} ready of ${pods}\n`,
      );
    }, PROGRESS_INTERVAL_MS);
    for (;;) {
      if (scheduledAt === undefined && scheduled.size >= pods) scheduledAt = performance.now();
      if (ready.size >= pods) break;
      if (Date.now() > deadline) {
        throw new Error(`only ${ready.size}/${pods} pods ready after ${TIMEOUT_MS / 1000} s`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const finished = performance.now();
    const seconds = (finished - started) / 1000;
    return {
      mode,
      nodes,
      podCidr: plan.podCidr,
      nodeCidrMaskSize: plan.nodeCidrMaskSize,
      deployments,
      pods,
      secondsToAllScheduled: Number((((scheduledAt ?? finished) - started) / 1000).toFixed(2)),
      secondsToAllReady: Number(seconds.toFixed(2)),
      podsPerSecond: Number((pods / seconds).toFixed(1)),
      clusterPeakRssMiB: Math.round(Math.max(peakRss, process.memoryUsage.rss()) / 2 ** 20),
      loadAverage1m: Number((loadavg()[0] ?? 0).toFixed(2)),
    };
  } finally {
    clearInterval(progress);
    clearInterval(sampler);
    rest.close();
    await cluster?.stop();
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const controlPlanePods = Number(process.argv[2] ?? 1000);
  const dataplanePods = Number(process.argv[3] ?? 100);
  const layout = controlPlaneLayout(controlPlanePods);
  const results: PodsReadyMeasurement[] = [
    await measurePodsReady('control-plane', controlPlanePods, layout.nodes, layout.plan),
  ];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const skipped: string[] = [];
  if (dataplanePods <= 0) {
    skipped.push('dataplane: 0 pods asked for');
  } else if (isRoot) {
    results.push(
      await measurePodsReady('dataplane', dataplanePods, Math.max(2, Math.ceil(dataplanePods / 250))),
    );
  } else {
    skipped.push('dataplane: needs root and iproute2');
  }
  process.stdout.write(`${JSON.stringify({ benchmark: 'local-cluster', results, skipped }, null, 2)}\n`);
}

if (import.meta.main) {
  const serverAt = process.argv.indexOf(SERVER_FLAG);
  const run =
    serverAt >= 0 ? serveApi(process.argv[serverAt + 1] ?? tmpdir()) : main().then(() => process.exit(0));
  run.catch((error: unknown) => {
    process.stderr.write(`bench/local-cluster: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
