/**
 * Benchmark of the endpoint controllers on the control-plane mode of the local cluster, in three
 * processes as in a real cluster: the local API server; the local cluster (scheduler and one
 * kubelet per node: it binds the pods, gives them IPs from their node's pod CIDR and reports them
 * Ready); and the Endpoints, EndpointSlice and mirroring controllers, wired as the controller
 * manager wires them, talking to the API server over HTTPS. The pods are bare Pods, one set per
 * Service; readiness flips go through the kubelet: the benchmark sets or clears the
 * `e2e.portico.io/ready=false` annotation and the kubelet writes the pod's new status, as it would
 * after a readiness probe changed its verdict. Prints JSON:
 * - populateSeconds: from creating the first pod until every pod is Ready (scheduler and kubelets);
 * - fullSyncSeconds: from starting the controllers' informers until every pod is in a slice (lists
 *   included);
 * - per readiness-flip rate: latency from the pod's status change (the kubelet's write) to the
 *   first slice write that shows the new readiness (p50/p99, observed on the server's own event
 *   stream, which feeds its watches), slice writes per pod change, and how long the kubelet took
 *   from the annotation to the status write;
 * - peak memory of the controller process (controllers, informer caches and the HTTPS client; the
 *   API server and the local cluster run in processes of their own and are not counted): RSS and
 *   V8 heap.
 *
 * Size: BENCH_SERVICES (default 10000) × BENCH_PODS_PER_SERVICE (default 10) on 50 nodes; flip
 * phases at the rates in BENCH_RATES (default "20,200") for BENCH_FLIP_SECONDS each (default 10);
 * BENCH_CONCURRENCY is `--concurrent-service-endpoint-syncs` (default 5, as upstream).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { loadavg } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { createEndpointControllers } from '../controllers/endpoint-controllers.ts';
import { allEndpointInformers } from '../controllers/endpoint-informers.ts';
import { createLogger } from '../controllers/runtime/logging.ts';
import { startApiServer } from '../e2e/apiserver/index.ts';
import { LocalCluster } from '../e2e/local/cluster.ts';
import { newRunId } from '../e2e/local/netns.ts';
import { readinessOverrideAnnotation } from '../e2e/local/pod-status.ts';
import { nodeCidrPlanFor } from './local-cluster.ts';

const SERVICES = Number(process.env['BENCH_SERVICES'] ?? 10_000);
const PODS_PER_SERVICE = Number(process.env['BENCH_PODS_PER_SERVICE'] ?? 10);
const RATES = (process.env['BENCH_RATES'] ?? '20,200').split(',').map(Number);
const FLIP_SECONDS = Number(process.env['BENCH_FLIP_SECONDS'] ?? 10);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 5);
const NODES = 50;
/** Argument that makes this file the API server process of the benchmark. */
const SERVER_FLAG = '--serve-api';
/** Argument that makes this file the local cluster process: `--run-cluster <kubeconfig> <pods>`. */
const CLUSTER_FLAG = '--run-cluster';
const ZONES = ['zone-a', 'zone-b', 'zone-c'];
const PODS_RESOURCE = '/pods';
const POPULATE_TIMEOUT_MS = 1_500_000;

/** Requests from the benchmark to the API server process. */
type ServerRequest =
  | { kind: 'populate'; services: number; podsPerService: number }
  | { kind: 'count' }
  | { kind: 'flips'; rate: number; seconds: number }
  | { kind: 'close' };

/** Latency summary of one flip phase, computed in the API server process. */
interface FlipResult {
  rate: number;
  flips: number;
  achievedRate: number;
  sliceWrites: number;
  unobserved: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** From the annotation write to the kubelet's status write. */
  kubeletStatusP50Ms: number;
  kubeletStatusP99Ms: number;
  apiServerGcPauses: GcPauses;
}

/** Garbage-collection pauses of this process while it runs. */
interface GcPauses {
  count: number;
  totalMs: number;
  maxMs: number;
}

/**
 * Records this process's garbage-collection pauses until the returned function is called, which
 * gives the summary. A latency tail that lines up with long pauses is the collector's, not the
 * reconcilers'.
 */
function observeGcPauses(): () => GcPauses {
  const pauses: GcPauses = { count: 0, totalMs: 0, maxMs: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      pauses.count += 1;
      pauses.totalMs += entry.duration;
      pauses.maxMs = Math.max(pauses.maxMs, entry.duration);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => {
    observer.disconnect();
    return { count: pauses.count, totalMs: round(pauses.totalMs), maxMs: round(pauses.maxMs) };
  };
}

function nameOf(object: Record<string, unknown>): string {
  return String((object['metadata'] as { name?: unknown } | undefined)?.name ?? '');
}

function isReady(pod: Record<string, unknown>): boolean {
  const conditions = (pod['status'] as { conditions?: { type?: string; status?: string }[] } | undefined)
    ?.conditions;
  return conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

const now = () => performance.timeOrigin + performance.now();
const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve));

/** API server side: the server, the fixtures, and the flip driver with its latency observer. */
async function serveInChild(): Promise<void> {
  const server = await startApiServer({ historyWindow: 50_000, bookmarkIntervalMs: 60_000 });
  const catalog = server.registry.catalog;
  const pods = catalog.find('', 'v1', 'pods')!;
  const services = catalog.find('', 'v1', 'services')!;
  const options = { dryRun: false, user: { username: 'bench', groups: ['system:masters'] } };
  let podNames: string[] = [];
  const readyOf = new Map<string, boolean>();
  const readyPods = new Set<string>();
  server.store.onEvent((event) => {
    if (event.resourceKey !== PODS_RESOURCE) return;
    const name = nameOf(event.object);
    if (event.type !== 'DELETED' && isReady(event.object)) readyPods.add(name);
    else readyPods.delete(name);
  });

  /** What `kubectl annotate` does: the kubelet sees the pod change and writes its status. */
  const setReadinessOverride = async (name: string, ready: boolean) => {
    await server.registry.mutate(
      pods,
      'default',
      name,
      (current) => {
        const metadata = current.metadata as { annotations?: Record<string, string> };
        const annotations = { ...(metadata.annotations ?? {}) };
        if (ready) delete annotations[readinessOverrideAnnotation];
        else annotations[readinessOverrideAnnotation] = 'false';
        metadata.annotations = annotations;
        return current;
      },
      options,
    );
    readyOf.set(name, ready);
  };

  const handle = async (request: ServerRequest): Promise<unknown> => {
    if (request.kind === 'populate') {
      const started = now();
      podNames = [];
      for (let s = 0; s < request.services; s++) {
        await server.registry.create(
          services,
          'default',
          {
            metadata: { name: `svc-${s}` },
            spec: {
              type: 'ClusterIP',
              clusterIP: `10.96.${s >> 8}.${s & 255}`,
              clusterIPs: [`10.96.${s >> 8}.${s & 255}`],
              ipFamilies: ['IPv4'],
              selector: { app: `svc-${s}` },
              ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 9376 }],
            },
          },
          options,
        );
        for (let p = 0; p < request.podsPerService; p++) {
          const name = `svc-${s}-${p}`;
          await server.registry.create(
            pods,
            'default',
            {
              metadata: { name, labels: { app: `svc-${s}`, tier: 'bench' } },
              spec: {
                containers: [
                  { name: 'app', image: 'agnhost', ports: [{ containerPort: 9376, name: 'http' }] },
                ],
              },
            },
            options,
          );
          podNames.push(name);
          readyOf.set(name, true);
        }
        if (s % 50 === 0) await yieldToLoop();
      }
      const createSeconds = (now() - started) / 1000;
      const deadline = now() + POPULATE_TIMEOUT_MS;
      while (readyPods.size < podNames.length) {
        if (now() > deadline) {
          throw new Error(
            `only ${readyPods.size}/${podNames.length} pods Ready after ${POPULATE_TIMEOUT_MS / 1000} s`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return { createSeconds, populateSeconds: (now() - started) / 1000 };
    }
    if (request.kind === 'count') {
      let slices = 0;
      let endpoints = 0;
      for (const slice of server.store.list('discovery.k8s.io/endpointslices')) {
        slices += 1;
        endpoints += ((slice as { endpoints?: unknown[] }).endpoints ?? []).length;
      }
      return { slices, endpoints };
    }
    if (request.kind === 'flips') return flipPhase(request.rate, request.seconds);
    await server.close();
    return {};
  };

  /**
   * Flips random pods at `rate`/s through the kubelet and times each from the kubelet's status
   * write to the first slice write that shows the new readiness.
   */
  const flipPhase = async (rate: number, seconds: number): Promise<FlipResult> => {
    const pending = new Map<string, { ready: boolean; annotatedAt: number; statusAt?: number }>();
    const latencies: number[] = [];
    const kubeletLatencies: number[] = [];
    let sliceWrites = 0;
    const stopObserving = server.store.onEvent((event) => {
      if (event.resourceKey === PODS_RESOURCE) {
        const waiting = pending.get(nameOf(event.object));
        if (
          waiting !== undefined &&
          waiting.statusAt === undefined &&
          isReady(event.object) === waiting.ready
        ) {
          waiting.statusAt = now();
          kubeletLatencies.push(waiting.statusAt - waiting.annotatedAt);
        }
        return;
      }
      if (!event.resourceKey.endsWith('/endpointslices') || event.type === 'DELETED') return;
      sliceWrites += 1;
      const endpoints =
        (
          event.object as {
            endpoints?: { targetRef?: { name?: string }; conditions?: { ready?: boolean } }[];
          }
        ).endpoints ?? [];
      for (const endpoint of endpoints) {
        const name = endpoint.targetRef?.name;
        if (name === undefined) continue;
        const waiting = pending.get(name);
        if (waiting?.statusAt !== undefined && waiting.ready === endpoint.conditions?.ready) {
          latencies.push(now() - waiting.statusAt);
          pending.delete(name);
        }
      }
    });
    const gcPauses = observeGcPauses();
    const total = Math.round(rate * seconds);
    const started = now();
    let flips = 0;
    while (flips < total) {
      const due = started + (flips * 1000) / rate;
      const wait = due - now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const name = podNames[Math.floor(Math.random() * podNames.length)]!;
      if (pending.has(name)) continue;
      const ready = !readyOf.get(name);
      pending.set(name, { ready, annotatedAt: now() });
      await setReadinessOverride(name, ready);
      flips += 1;
    }
    const achievedRate = flips / ((now() - started) / 1000);
    const deadline = now() + 30_000;
    while (pending.size > 0 && now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    // Let trailing writes (batching, retries) land before counting writes per change.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    stopObserving();
    latencies.sort((a, b) => a - b);
    kubeletLatencies.sort((a, b) => a - b);
    return {
      rate,
      flips,
      achievedRate: round(achievedRate),
      sliceWrites,
      unobserved: pending.size,
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      maxMs: round(latencies.at(-1) ?? Number.NaN),
      kubeletStatusP50Ms: round(percentile(kubeletLatencies, 50)),
      kubeletStatusP99Ms: round(percentile(kubeletLatencies, 99)),
      apiServerGcPauses: gcPauses(),
    };
  };

  process.on('message', (request: ServerRequest) => {
    handle(request).then(
      (answer) => {
        process.send!(answer);
        if (request.kind === 'close') process.disconnect();
      },
      (error: unknown) => process.send!({ error: String(error) }),
    );
  });
  process.send!({ kubeconfigPath: server.kubeconfigPath });
}

/**
 * Local cluster side: nodes, scheduler and kubelets in control-plane mode, with a pod CIDR per
 * node wide enough for its share of the pods. Reports its peak RSS when told to stop.
 */
async function runClusterInChild(kubeconfigPath: string, pods: number): Promise<void> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const plan = nodeCidrPlanFor(Math.ceil(pods / NODES));
  const cluster = await LocalCluster.start({
    kubeConfig,
    logger: createLogger({ level: 'error' }),
    nodeCount: NODES,
    podCidr: plan.podCidr,
    nodeCidrMaskSize: plan.nodeCidrMaskSize,
    zones: ZONES,
    runId: newRunId(),
  });
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 500);
  process.on('message', () => {
    clearInterval(sampler);
    cluster.stop().then(() => {
      process.send!({ peakRss: Math.max(peakRss, process.memoryUsage.rss()), plan });
      process.disconnect();
    });
  });
  process.send!({ ready: true });
}

async function runBenchmark(): Promise<void> {
  const script = fileURLToPath(import.meta.url);
  const server: ChildProcess = fork(script, [SERVER_FLAG], { stdio: 'inherit' });
  let cluster: ChildProcess | undefined;
  // The benchmark must not leave its other processes behind, whatever ends it.
  process.once('exit', () => {
    server.kill('SIGKILL');
    cluster?.kill('SIGKILL');
  });
  const ask = <T>(request: ServerRequest): Promise<T> =>
    new Promise((resolve, reject) => {
      server.once('message', (answer: T & { error?: string }) =>
        answer.error === undefined ? resolve(answer) : reject(new Error(answer.error)),
      );
      server.send(request);
    });
  const [{ kubeconfigPath }] = (await once(server, 'message')) as [{ kubeconfigPath: string }];
  const totalPods = SERVICES * PODS_PER_SERVICE;
  const clusterProcess = fork(script, [CLUSTER_FLAG, kubeconfigPath, String(totalPods)], {
    stdio: 'inherit',
  });
  cluster = clusterProcess;
  await once(clusterProcess, 'message');
  const { createSeconds, populateSeconds } = await ask<{ createSeconds: number; populateSeconds: number }>({
    kind: 'populate',
    services: SERVICES,
    podsPerService: PODS_PER_SERVICE,
  });

  let peakRss = 0;
  let peakHeap = 0;
  const sampleMemory = () => {
    const usage = process.memoryUsage();
    peakRss = Math.max(peakRss, usage.rss);
    peakHeap = Math.max(peakHeap, usage.heapUsed);
  };
  const sampler = setInterval(sampleMemory, 100);

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const endpointControllers = createEndpointControllers(kubeConfig, createLogger({ level: 'error' }), {
    concurrentServiceEndpointSyncs: CONCURRENCY,
  });
  const informers = allEndpointInformers(endpointControllers.informers);
  const started = now();
  for (const informer of informers) informer.start();
  await Promise.all(informers.map((informer) => informer.waitForSync()));
  const cachesSyncedSeconds = (now() - started) / 1000;
  for (const controller of endpointControllers.controllers) controller.run();
  for (;;) {
    const { endpoints } = await ask<{ endpoints: number }>({ kind: 'count' });
    if (endpoints >= totalPods) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const fullSyncSeconds = (now() - started) / 1000;
  // Slice events of our own creates that raced the create's answer queue delayed (1 s) no-op syncs;
  // let them drain so the flip phases measure the steady state.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  await Promise.all(endpointControllers.controllers.map((controller) => controller.whenIdle()));
  const afterSync = await ask<{ slices: number; endpoints: number }>({ kind: 'count' });

  const phases: (FlipResult & { controllerGcPauses: GcPauses })[] = [];
  for (const rate of RATES) {
    const gcPauses = observeGcPauses();
    const phase = await ask<FlipResult>({ kind: 'flips', rate, seconds: FLIP_SECONDS });
    phases.push({ ...phase, controllerGcPauses: gcPauses() });
    sampleMemory();
  }
  clearInterval(sampler);
  sampleMemory();
  await Promise.all(endpointControllers.controllers.map((controller) => controller.stop(5_000)));
  await Promise.all(informers.map((informer) => informer.stop()));
  const clusterExited = once(clusterProcess, 'exit');
  clusterProcess.send('stop');
  const [clusterReport] = (await once(clusterProcess, 'message')) as [
    { peakRss: number; plan: { podCidr: string; nodeCidrMaskSize: number } },
  ];
  await clusterExited;
  await ask({ kind: 'close' });
  await once(server, 'exit');

  process.stdout.write(
    `${JSON.stringify(
      {
        services: SERVICES,
        podsPerService: PODS_PER_SERVICE,
        pods: totalPods,
        concurrentServiceEndpointSyncs: CONCURRENCY,
        localCluster: {
          nodes: NODES,
          podCidr: clusterReport.plan.podCidr,
          nodeCidrMaskSize: clusterReport.plan.nodeCidrMaskSize,
          peakRssMiB: round(clusterReport.peakRss / 2 ** 20),
        },
        podCreateSeconds: round(createSeconds),
        populateSeconds: round(populateSeconds),
        cachesSyncedSeconds: round(cachesSyncedSeconds, 2),
        fullSyncSeconds: round(fullSyncSeconds, 2),
        slicesAfterSync: afterSync.slices,
        endpointsAfterSync: afterSync.endpoints,
        flips: phases.map((phase) => ({
          ...phase,
          sliceWritesPerPodChange: round(phase.sliceWrites / Math.max(1, phase.flips), 3),
        })),
        peakMemory: {
          rssMiB: round(peakRss / 2 ** 20),
          of: 'the controller process (the three controllers and their informer caches; the API server and the local cluster run in processes of their own)',
          heapMiB: round(peakHeap / 2 ** 20),
        },
        loadAverage1m: round(loadavg()[0] ?? 0, 2),
        goals: {
          p99MsAt200PerSecond: 250,
          sliceWritesPerChangedSlice: 1,
          fullSyncSecondsAt100kPods: 20,
          memoryMiB: 1024,
        },
      },
      null,
      2,
    )}\n`,
  );
}

const clusterAt = process.argv.indexOf(CLUSTER_FLAG);
if (process.argv.includes(SERVER_FLAG)) await serveInChild();
else if (clusterAt >= 0)
  await runClusterInChild(process.argv[clusterAt + 1] ?? '', Number(process.argv[clusterAt + 2]));
else await runBenchmark();
