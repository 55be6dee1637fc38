/**
 * Allocator benchmark; prints one JSON object.
 *
 * - allocations/s through the mutating webhook (AdmissionReview over HTTPS with keep-alive) with
 *   1 and 3 replicas (separate processes, separate stores, one shared ConfigMap in the local API
 *   server), and the compare-and-swap writes per allocation;
 * - admission latency p50/p99 at 200 creates/s: the webhook's own round trip, and a whole
 *   Service create through the local API server with the webhooks registered;
 * - the allocation ConfigMap size for a /12 and a /108;
 * - duplicates over 100,000 allocations by three stores sharing one ConfigMap (0 expected).
 *
 * Usage: node bench/allocators.ts [--allocations N] [--paced-seconds S] [--duplicates-allocations N]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { AdmissionregistrationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { ClusterIPAllocator } from '../allocators/allocator.ts';
import { ClusterIPRange } from '../allocators/cluster-ip-range.ts';
import { ConfigMapAllocationStore } from '../allocators/configmap-store.ts';
import { InMemoryConfigMapClient } from '../allocators/memory-configmap-client.ts';
import { allocationConfigMapName } from '../api/allocation.ts';
import { kubeConfigFor, startTestApiServer } from '../controllers/runtime/testing/harness.ts';
import type { ApiServer } from '../e2e/apiserver/index.ts';
import type { AdmissionReview } from '../webhooks/admission.ts';
import { createCertificateAuthority, issueServingCertificate } from '../webhooks/certificates.ts';
import { webhookConfigurations } from '../webhooks/configurations.ts';
import { MUTATE_SERVICES_PATH } from '../webhooks/services/mutate.ts';
import { RoundRobinProxy } from '../webhooks/testing/round-robin-proxy.ts';

const { values: flags } = parseArgs({
  options: {
    allocations: { type: 'string', default: '4000' },
    'paced-seconds': { type: 'string', default: '5' },
    'duplicates-allocations': { type: 'string', default: '100000' },
    'create-rate': { type: 'string', default: '200' },
    'skip-creates': { type: 'boolean', default: false },
  },
});
const allocationsPerRun = Number(flags.allocations);
const pacedSeconds = Number(flags['paced-seconds']);
const duplicateAllocations = Number(flags['duplicates-allocations']);
const namespace = 'portico-system';
const replicaScript = new URL('../webhooks/testing/replica.ts', import.meta.url).pathname;
const createsPerSecond = 200;
const serviceCreatesPerSecond = Number(flags['create-rate']);

interface Replica {
  readonly child: ChildProcess;
  readonly port: number;
  /** Resolves with the replica's store stats once it exits after SIGTERM. */
  readonly stats: Promise<Array<{ allocator: string; writes: number; conflicts: number }>>;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function round(value: number, digits = 2): number {
  return Number(value.toFixed(digits));
}

let sequence = 0;
function reviewBody(): string {
  sequence++;
  const review: AdmissionReview = {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `bench-${sequence}`,
      operation: 'CREATE',
      name: `s-${sequence}`,
      namespace: 'default',
      object: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `s-${sequence}`, namespace: 'default' },
        spec: { selector: { app: 'bench' }, ports: [{ port: 80 }] },
      },
    },
  };
  return JSON.stringify(review);
}

/** Sends one CREATE review; resolves with the round trip in ms. */
function admit(port: number, ca: string, agent: Agent): Promise<number> {
  const body = reviewBody();
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: MUTATE_SERVICES_PATH,
        method: 'POST',
        ca,
        agent,
        headers: { 'Content-Type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const review = JSON.parse(Buffer.concat(chunks).toString()) as AdmissionReview;
          if (review.response?.allowed) resolve(performance.now() - started);
          else reject(new Error(JSON.stringify(review.response?.status)));
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function startReplica(apiServer: ApiServer, certFile: string, keyFile: string): Promise<Replica> {
  const child = spawn(
    process.execPath,
    [replicaScript, apiServer.kubeconfigPath, namespace, certFile, keyFile],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    const check = () => {
      const match = /ready (\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`replica exited with ${code} before serving`)));
  });
  const stats = new Promise<Replica extends { stats: Promise<infer S> } ? S : never>((resolve) => {
    child.once('exit', () => {
      const match = /stats (.*)\n/.exec(output);
      resolve(match ? JSON.parse(match[1]!) : []);
    });
  });
  return { child, port, stats };
}

/** Runs `count` requests with `concurrency` in flight; resolves with the elapsed seconds. */
async function saturate(count: number, concurrency: number, send: () => Promise<number>): Promise<number> {
  let started = 0;
  const begin = performance.now();
  const worker = async () => {
    while (started < count) {
      started++;
      await send();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (performance.now() - begin) / 1000;
}

/** Sends at a fixed rate for `seconds`; resolves with the sorted latencies in ms. */
async function paced(seconds: number, perSecond: number, send: () => Promise<number>): Promise<number[]> {
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const begin = performance.now();
  const total = Math.round(seconds * perSecond);
  for (let i = 0; i < total; i++) {
    const due = begin + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(send().then((ms) => void latencies.push(ms)));
  }
  await Promise.all(pending);
  return latencies.sort((a, b) => a - b);
}

async function stopReplicas(replicas: readonly Replica[]): Promise<{ writes: number; conflicts: number }> {
  for (const { child } of replicas) child.kill('SIGTERM');
  let writes = 0;
  let conflicts = 0;
  for (const replica of replicas) {
    for (const entry of await replica.stats) {
      if (entry.allocator !== 'IPv4') continue;
      writes += entry.writes;
      conflicts += entry.conflicts;
    }
  }
  return { writes, conflicts };
}

async function webhookThroughput(
  replicaCount: number,
  apiServer: ApiServer,
  certFile: string,
  keyFile: string,
  ca: string,
) {
  const replicas: Replica[] = [];
  for (let i = 0; i < replicaCount; i++) replicas.push(await startReplica(apiServer, certFile, keyFile));
  const proxy = await RoundRobinProxy.start(replicas.map((replica) => replica.port));
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const warmUp = 200;
  try {
    await saturate(warmUp, 32, () => admit(proxy.port, ca, agent));
    const seconds = await saturate(allocationsPerRun, 64, () => admit(proxy.port, ca, agent));
    const latencies =
      replicaCount === 1
        ? await paced(pacedSeconds, createsPerSecond, () => admit(proxy.port, ca, agent))
        : [];
    const { writes, conflicts } = await stopReplicas(replicas);
    const allocations = warmUp + allocationsPerRun + latencies.length;
    return {
      allocationsPerSecond: round(allocationsPerRun / seconds, 0),
      casWritesPerAllocation: round(writes / allocations, 4),
      casConflicts: conflicts,
      ...(latencies.length > 0
        ? {
            webhookLatencyAt200PerSecondMs: {
              p50: round(percentile(latencies, 50)),
              p99: round(percentile(latencies, 99)),
            },
          }
        : {}),
    };
  } finally {
    agent.destroy();
    await proxy.close();
    for (const { child } of replicas) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** Whole Service creates through the API server with the webhooks registered, paced at 200/s. */
async function createLatency(apiServer: ApiServer, certFile: string, keyFile: string, ca: string) {
  const replica = await startReplica(apiServer, certFile, keyFile);
  const kubeConfig = kubeConfigFor(apiServer.kubeconfigPath);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const admission = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  const { mutating, validating } = webhookConfigurations(
    'portico',
    { url: `https://127.0.0.1:${replica.port}` },
    ca,
  );
  await admission.createMutatingWebhookConfiguration({ body: mutating });
  await admission.createValidatingWebhookConfiguration({ body: validating });
  try {
    let i = 0;
    let failed = 0;
    const create = async () => {
      const name = `c-${i++}`;
      const started = performance.now();
      try {
        await core.createNamespacedService({
          namespace: 'default',
          body: { metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80 }] } },
        });
      } catch {
        // Overload shows as webhook call timeouts; counted, and kept out of the latencies.
        failed++;
        return Number.NaN;
      }
      return performance.now() - started;
    };
    const latencies = (await paced(pacedSeconds, serviceCreatesPerSecond, create)).filter(
      (ms) => !Number.isNaN(ms),
    );
    return {
      perSecond: serviceCreatesPerSecond,
      p50: round(percentile(latencies, 50)),
      p99: round(percentile(latencies, 99)),
      failed,
    };
  } finally {
    replica.child.kill('SIGKILL');
  }
}

/**
 * Bytes of the stored ConfigMap (JSON) for a range holding `count` random allocations (the
 * bitmap is deflated, so the size depends on how full and how scattered it is).
 */
async function configMapBytes(cidr: string, count: number): Promise<number> {
  const client = new InMemoryConfigMapClient();
  const range = new ClusterIPRange(cidr);
  const store = new ConfigMapAllocationStore<string>({
    client,
    namespace,
    name: allocationConfigMapName(range.kind),
    newAllocator: () => new ClusterIPAllocator(range),
  });
  await store.update((allocator) => {
    for (let i = 0; i < Math.min(count, range.size); i++) allocator.allocateNext();
  });
  return Buffer.byteLength(JSON.stringify(client.peek(namespace, allocationConfigMapName(range.kind))));
}

async function configMapSizes(cidr: string) {
  const size = new ClusterIPRange(cidr).size;
  return {
    addresses: size,
    oneAllocated: await configMapBytes(cidr, 1),
    tenThousandAllocated: await configMapBytes(cidr, 10_000),
    halfAllocated: await configMapBytes(cidr, Math.floor(size / 2)),
    full: await configMapBytes(cidr, size),
  };
}

/** Three stores racing on one in-memory ConfigMap; counts values handed out twice. */
async function duplicates(
  total: number,
): Promise<{ allocations: number; duplicates: number; conflicts: number }> {
  const client = new InMemoryConfigMapClient();
  const range = new ClusterIPRange('10.96.0.0/12');
  const stores = Array.from(
    { length: 3 },
    () =>
      new ConfigMapAllocationStore<string>({
        client,
        namespace,
        name: 'bench',
        newAllocator: () => new ClusterIPAllocator(range),
        initialBackoffMs: 0.5,
      }),
  );
  const seen = new Set<string>();
  let repeats = 0;
  const perRound = 3000;
  for (let done = 0; done < total; done += perRound) {
    const batch = Math.min(perRound, total - done);
    const values = await Promise.all(Array.from({ length: batch }, (_, i) => stores[i % 3]!.allocateNext()));
    for (const value of values) {
      if (seen.has(value)) repeats++;
      seen.add(value);
    }
  }
  return { allocations: total, duplicates: repeats, conflicts: client.conflicts };
}

const directory = await mkdtemp(join(tmpdir(), 'portico-bench-allocators-'));
const apiServer = await startTestApiServer();
try {
  const core = kubeConfigFor(apiServer.kubeconfigPath).makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const ca = await createCertificateAuthority(directory, 'portico-bench-ca');
  const certFile = join(directory, 'tls.crt');
  const keyFile = join(directory, 'tls.key');
  await issueServingCertificate(ca, 'portico-webhook', ['IP:127.0.0.1'], certFile, keyFile);
  const oneReplica = await webhookThroughput(1, apiServer, certFile, keyFile, ca.caPem);
  const threeReplicas = await webhookThroughput(3, apiServer, certFile, keyFile, ca.caPem);
  const serviceCreateLatencyMs = flags['skip-creates']
    ? undefined
    : await createLatency(apiServer, certFile, keyFile, ca.caPem);
  const result = {
    webhook: { oneReplica, threeReplicas },
    serviceCreateLatencyMs,
    configMapBytes: {
      ipv4Slash12: await configMapSizes('10.96.0.0/12'),
      ipv6Slash108: await configMapSizes('fd00::/108'),
    },
    duplicateCheck: await duplicates(duplicateAllocations),
    settings: { allocationsPerRun, pacedSeconds, createsPerSecond },
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  await apiServer.close();
  await rm(directory, { recursive: true, force: true });
}
process.exit(0);
