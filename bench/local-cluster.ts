/**
 * Benchmark of the local cluster: time from creating a Deployment to all its pods Ready, in
 * control-plane mode (default 1,000 pods over 8 nodes: a node's /24 holds 253 pods) and, when run
 * as root, in dataplane mode (default 100 pods over 2 nodes, each pod a namespace and a process).
 * Prints one JSON object. Usage: `node bench/local-cluster.ts [controlPlanePods] [dataplanePods]`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig, type V1Deployment } from '@kubernetes/client-node';
import { createLogger } from '../controllers/runtime/logging.ts';
import { startApiServer } from '../e2e/apiserver/index.ts';
import { LocalCluster } from '../e2e/local/cluster.ts';
import { newRunId } from '../e2e/local/netns.ts';
import { KubeRest } from '../e2e/local/rest.ts';

/** One measurement. */
export interface PodsReadyMeasurement {
  readonly mode: 'control-plane' | 'dataplane';
  readonly nodes: number;
  readonly pods: number;
  readonly secondsToAllReady: number;
  readonly podsPerSecond: number;
}

function benchDeployment(replicas: number): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'bench', namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'bench' } },
      template: {
        metadata: { labels: { app: 'bench' } },
        spec: { containers: [{ name: 'web', image: 'demo', ports: [{ name: 'http', containerPort: 80 }] }] },
      },
    },
  };
}

/** Brings a fresh API server and local cluster up, creates the Deployment and times it to all Ready. */
export async function measurePodsReady(
  mode: 'control-plane' | 'dataplane',
  pods: number,
  nodes: number,
): Promise<PodsReadyMeasurement> {
  const dataDir = await mkdtemp(join(tmpdir(), 'portico-bench-local-'));
  const server = await startApiServer({ dataDir, historyWindow: 100_000 });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(server.kubeconfigPath);
  const rest = new KubeRest(kubeConfig);
  let cluster: LocalCluster | undefined;
  try {
    cluster = await LocalCluster.start({
      kubeConfig,
      logger: createLogger({ level: 'silent' }),
      nodeCount: nodes,
      dataplane: mode === 'dataplane',
      runId: newRunId(),
    });
    const started = performance.now();
    await rest.create('/apis/apps/v1/namespaces/default/deployments', benchDeployment(pods));
    const deadline = Date.now() + 600_000;
    for (;;) {
      const ready = cluster.pods
        .listInNamespace('default')
        .filter((pod) =>
          pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        ).length;
      if (ready >= pods) break;
      if (Date.now() > deadline) throw new Error(`only ${ready}/${pods} pods ready after 600 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      mode,
      nodes,
      pods,
      secondsToAllReady: Number(seconds.toFixed(2)),
      podsPerSecond: Number((pods / seconds).toFixed(1)),
    };
  } finally {
    rest.close();
    await cluster?.stop();
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const controlPlanePods = Number(process.argv[2] ?? 1000);
  const dataplanePods = Number(process.argv[3] ?? 100);
  const results: PodsReadyMeasurement[] = [
    await measurePodsReady('control-plane', controlPlanePods, Math.max(2, Math.ceil(controlPlanePods / 250))),
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
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`bench/local-cluster: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(1);
    },
  );
}
