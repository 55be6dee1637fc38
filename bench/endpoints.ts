/**
 * Benchmark of the endpoint controllers in the control-plane mode of the local cluster: the local API
 * server runs in a child process (as a separate kube-apiserver would) and holds
 * Services, Nodes and pods as plain objects with status set; the Endpoints, EndpointSlice and
 * mirroring controllers run in the main thread against it over HTTPS, exactly as the controller
 * manager wires them. Prints JSON:
 * - fullSyncSeconds: from starting the informers until every pod is in a slice (lists included);
 * - per readiness-flip rate: latency from the pod's status write to the first slice write that shows
 *   the new readiness (p50/p99, observed on the server's own event stream, which feeds its watches),
 *   and slice writes per pod change;
 * - peak memory of the controller process (controllers, informer caches and the HTTPS client; the
 *   API server is in its own process and not counted): RSS and V8 heap.
 *
 * Size: BENCH_SERVICES (default 10000) × BENCH_PODS_PER_SERVICE (default 10); flip phases at the
 * rates in BENCH_RATES (default "20,200") for BENCH_FLIP_SECONDS each (default 10);
 * BENCH_CONCURRENCY is `--concurrent-service-endpoint-syncs` (default 5, as upstream).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { createEndpointControllers } from '../controllers/endpoint-controllers.ts';
import { allEndpointInformers } from '../controllers/endpoint-informers.ts';
import { podIP } from '../controllers/endpoint-test-cluster.ts';
import { createLogger } from '../controllers/runtime/logging.ts';
import { startApiServer } from '../e2e/apiserver/index.ts';

const SERVICES = Number(process.env['BENCH_SERVICES'] ?? 10_000);
const PODS_PER_SERVICE = Number(process.env['BENCH_PODS_PER_SERVICE'] ?? 10);
const RATES = (process.env['BENCH_RATES'] ?? '20,200').split(',').map(Number);
const FLIP_SECONDS = Number(process.env['BENCH_FLIP_SECONDS'] ?? 10);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 5);
const NODES = 50;
/** Argument that makes this file the API server process of the benchmark. */
const SERVER_FLAG = '--serve-api';
const ZONES = ['zone-a', 'zone-b', 'zone-c'];

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
  const nodes = catalog.find('', 'v1', 'nodes')!;
  const options = { dryRun: false, user: { username: 'bench', groups: ['system:masters'] } };
  let podNames: string[] = [];
  const readyOf = new Map<string, boolean>();

  const setStatus = async (name: string, ready: boolean, ip: string) => {
    // A copy: the registry hands out the stored object itself, and editing it in place would make
    // the update a no-op.
    const pod = structuredClone(server.registry.get(pods, 'default', name)) as Record<string, unknown>;
    const status = ready ? 'True' : 'False';
    const lastTransitionTime = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    pod['status'] = {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      conditions: [
        { type: 'Ready', status, lastTransitionTime },
        { type: 'ContainersReady', status, lastTransitionTime },
      ],
    };
    await server.registry.update(pods, 'default', name, pod, options, 'status');
    readyOf.set(name, ready);
  };

  const handle = async (request: ServerRequest): Promise<unknown> => {
    if (request.kind === 'populate') {
      const started = now();
      for (let n = 0; n < NODES; n++) {
        await server.registry.create(
          nodes,
          '',
          {
            metadata: {
              name: `node-${n}`,
              labels: { 'topology.kubernetes.io/zone': ZONES[n % ZONES.length] },
            },
          },
          options,
        );
      }
      podNames = [];
      const ips = new Map<string, string>();
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
          const index = s * request.podsPerService + p;
          const name = `svc-${s}-${p}`;
          await server.registry.create(
            pods,
            'default',
            {
              metadata: { name, labels: { app: `svc-${s}`, tier: 'bench' } },
              spec: {
                nodeName: `node-${index % NODES}`,
                containers: [
                  { name: 'app', image: 'agnhost', ports: [{ containerPort: 9376, name: 'http' }] },
                ],
              },
            },
            options,
          );
          ips.set(name, podIP(index));
          await setStatus(name, true, podIP(index));
          podNames.push(name);
        }
        if (s % 50 === 0) await yieldToLoop();
      }
      ipOf = ips;
      return { populateSeconds: (now() - started) / 1000, kubeconfigPath: server.kubeconfigPath };
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

  let ipOf = new Map<string, string>();

  /** Flips random pods at `rate`/s and times each until a slice write shows the new readiness. */
  const flipPhase = async (rate: number, seconds: number): Promise<FlipResult> => {
    const pending = new Map<string, { at: number; ready: boolean }>();
    const latencies: number[] = [];
    let sliceWrites = 0;
    const stopObserving = server.store.onEvent((event) => {
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
        if (waiting !== undefined && waiting.ready === endpoint.conditions?.ready) {
          latencies.push(now() - waiting.at);
          pending.delete(name);
        }
      }
    });
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
      pending.set(name, { at: now(), ready });
      await setStatus(name, ready, ipOf.get(name)!);
      flips += 1;
    }
    const achievedRate = flips / ((now() - started) / 1000);
    const deadline = now() + 30_000;
    while (pending.size > 0 && now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    // Let trailing writes (batching, retries) land before counting writes per change.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    stopObserving();
    latencies.sort((a, b) => a - b);
    return {
      rate,
      flips,
      achievedRate: round(achievedRate),
      sliceWrites,
      unobserved: pending.size,
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      maxMs: round(latencies.at(-1) ?? Number.NaN),
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
  process.send!({ ready: true });
}

async function runBenchmark(): Promise<void> {
  const server: ChildProcess = fork(fileURLToPath(import.meta.url), [SERVER_FLAG], { stdio: 'inherit' });
  // The benchmark must not leave the server behind, whatever ends it.
  process.once('exit', () => server.kill('SIGKILL'));
  const ask = <T>(request: ServerRequest): Promise<T> =>
    new Promise((resolve, reject) => {
      server.once('message', (answer: T & { error?: string }) =>
        answer.error === undefined ? resolve(answer) : reject(new Error(answer.error)),
      );
      server.send(request);
    });
  await new Promise((resolve) => server.once('message', resolve));
  const { populateSeconds, kubeconfigPath } = await ask<{ populateSeconds: number; kubeconfigPath: string }>({
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
  const totalPods = SERVICES * PODS_PER_SERVICE;
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

  const phases: FlipResult[] = [];
  for (const rate of RATES) {
    phases.push(await ask<FlipResult>({ kind: 'flips', rate, seconds: FLIP_SECONDS }));
    sampleMemory();
  }
  clearInterval(sampler);
  sampleMemory();
  await Promise.all(endpointControllers.controllers.map((controller) => controller.stop(5_000)));
  await Promise.all(informers.map((informer) => informer.stop()));
  await ask({ kind: 'close' });
  await once(server, 'exit');

  process.stdout.write(
    `${JSON.stringify(
      {
        services: SERVICES,
        podsPerService: PODS_PER_SERVICE,
        pods: totalPods,
        concurrentServiceEndpointSyncs: CONCURRENCY,
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
          of: 'the controller process (the three controllers and their informer caches; the API server runs in another process)',
          heapMiB: round(peakHeap / 2 ** 20),
        },
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

if (process.argv.includes(SERVER_FLAG)) await serveInChild();
else await runBenchmark();
