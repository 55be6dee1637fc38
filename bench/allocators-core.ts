/**
 * Benchmark of the allocators' pure core and their ConfigMap persistence, without an API server.
 * Prints one JSON object:
 * - pureAllocationsPerSecond: allocateNext on the client-free allocators (ClusterIP /16 and /12,
 *   from empty and at 95% full; the default NodePort range, filled and emptied repeatedly);
 * - configMapBytes: size of the serialized allocation ConfigMap (JSON) for a /12 and a /108,
 *   empty, with 10,000 random allocations and full;
 * - casBatching: 1,000 concurrent allocateNext calls through the ConfigMap store on the in-memory
 *   client (which enforces resourceVersion compare-and-swap), with one replica and with three
 *   replicas sharing the ConfigMap, with no network delay and with a simulated 2 ms round trip
 *   per request: writes, conflicts and CAS writes per allocation;
 * - sustained: 100,000 allocations by 64 callers per replica (1 and 3 replicas, 2 ms round trip),
 *   each caller allocating one IP after another: duplicates (must be 0), writes, conflicts.
 *
 * Usage: node bench/allocators-core.ts
 */
import { performance } from 'node:perf_hooks';
import { ClusterIPAllocator, NodePortAllocator, type RangeAllocator } from '../allocators/allocator.ts';
import { ConfigMapAllocationStore, type ConfigMapClient } from '../allocators/configmap-store.ts';
import { InMemoryConfigMapClient } from '../allocators/memory-configmap-client.ts';
import { allocationConfigMapName } from '../api/allocation.ts';

const NAMESPACE = 'portico-system';

function rate(count: number, ms: number): number {
  return Math.round((count / ms) * 1000);
}

/** allocateNext `count` times on `allocator`; returns allocations per second. */
function timeAllocations(allocator: RangeAllocator<string | number>, count: number): number {
  const started = performance.now();
  for (let i = 0; i < count; i++) allocator.allocateNext();
  return rate(count, performance.now() - started);
}

function fillTo(allocator: RangeAllocator<string | number>, fraction: number): void {
  const target = Math.floor(allocator.range.size * fraction);
  while (allocator.used < target) allocator.allocateNext();
}

function pureAllocations(): Record<string, number> {
  const slash16 = new ClusterIPAllocator('10.0.0.0/16');
  const slash12 = new ClusterIPAllocator('10.96.0.0/12');
  const slash16Full = new ClusterIPAllocator('10.0.0.0/16');
  fillTo(slash16Full, 0.95);
  const slash12Full = new ClusterIPAllocator('10.96.0.0/12');
  fillTo(slash12Full, 0.95);
  const ipv6 = new ClusterIPAllocator('fd00:10:96::/108');

  const nodePorts = new NodePortAllocator();
  const rounds = 20;
  const started = performance.now();
  for (let round = 0; round < rounds; round++) {
    const ports: number[] = [];
    for (let i = 0; i < nodePorts.range.size; i++) ports.push(nodePorts.allocateNext());
    for (const port of ports) nodePorts.release(port);
  }
  const nodePortRate = rate(rounds * nodePorts.range.size, performance.now() - started);

  return {
    clusterIPv4Slash16FromEmpty: timeAllocations(slash16, 50_000),
    clusterIPv4Slash16At95PercentFull: timeAllocations(slash16Full, 2_000),
    clusterIPv4Slash12FromEmpty: timeAllocations(slash12, 200_000),
    clusterIPv4Slash12At95PercentFull: timeAllocations(slash12Full, 20_000),
    clusterIPv6Slash108FromEmpty: timeAllocations(ipv6, 50_000),
    nodePortDefaultRangeFillAndRelease: nodePortRate,
  };
}

async function configMapBytes(cidr: string): Promise<Record<string, number>> {
  const sizes: Record<string, number> = {};
  for (const [label, allocations] of [
    ['empty', 0],
    ['10000Allocated', 10_000],
    ['full', Number.POSITIVE_INFINITY],
  ] as const) {
    const client = new InMemoryConfigMapClient();
    const range = new ClusterIPAllocator(cidr).range;
    const name = allocationConfigMapName(range.kind === 'IPv6' ? 'IPv6' : 'IPv4');
    const store = new ConfigMapAllocationStore<string>({
      client,
      namespace: NAMESPACE,
      name,
      newAllocator: () => new ClusterIPAllocator(cidr),
    });
    const first = range.valueAt(0);
    await store.allocate(first);
    await store.update((allocator) => {
      const target = Math.min(allocations, allocator.range.size);
      while (allocator.used < target) allocator.allocateNext();
    });
    // The empty case still has to exist as a ConfigMap, so it is written with one entry and emptied.
    if (allocations === 0) await store.release(first);
    sizes[label] = JSON.stringify(client.peek(NAMESPACE, name)).length;
  }
  return sizes;
}

/** The in-memory client behind a simulated network round trip, so writes are in flight long enough to batch behind. */
function withLatency(client: ConfigMapClient, ms: number): ConfigMapClient {
  const delay = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  return {
    get: async (namespace, name) => {
      await delay();
      return client.get(namespace, name);
    },
    create: async (configMap) => {
      await delay();
      return client.create(configMap);
    },
    replace: async (configMap) => {
      await delay();
      return client.replace(configMap);
    },
  };
}

async function casBatching(replicaCount: number, latencyMs: number): Promise<Record<string, number>> {
  const client = new InMemoryConfigMapClient();
  const replicas = Array.from(
    { length: replicaCount },
    () =>
      new ConfigMapAllocationStore<string>({
        client: latencyMs > 0 ? withLatency(client, latencyMs) : client,
        namespace: NAMESPACE,
        name: allocationConfigMapName('IPv4'),
        newAllocator: () => new ClusterIPAllocator('10.96.0.0/12'),
      }),
  );
  const allocations = 1000;
  const started = performance.now();
  const ips = await Promise.all(
    Array.from({ length: allocations }, (_, i) => replicas[i % replicaCount]!.allocateNext()),
  );
  const elapsed = performance.now() - started;
  if (new Set(ips).size !== allocations) throw new Error('duplicate allocation in the CAS benchmark');
  return {
    replicas: replicaCount,
    simulatedRoundTripMs: latencyMs,
    allocations,
    writes: client.writes,
    conflicts: client.conflicts,
    casWritesPerAllocation: client.writes / allocations,
    allocationsPerSecond: rate(allocations, elapsed),
  };
}

/**
 * A steady load instead of one burst: `replicaCount` replicas, each with `concurrency` callers
 * that allocate one IP after another until `total` allocations were made, as webhook handlers
 * would. Checks that no IP was handed out twice.
 */
async function sustained(total: number, replicaCount: number, concurrency: number, latencyMs: number) {
  const client = new InMemoryConfigMapClient();
  const replicas = Array.from(
    { length: replicaCount },
    () =>
      new ConfigMapAllocationStore<string>({
        client: withLatency(client, latencyMs),
        namespace: NAMESPACE,
        name: allocationConfigMapName('IPv4'),
        newAllocator: () => new ClusterIPAllocator('10.96.0.0/12'),
      }),
  );
  const seen = new Set<string>();
  let duplicates = 0;
  let issued = 0;
  const caller = async (store: ConfigMapAllocationStore<string>): Promise<void> => {
    while (issued < total) {
      issued++;
      const ip = await store.allocateNext();
      if (seen.has(ip)) duplicates++;
      seen.add(ip);
    }
  };
  const started = performance.now();
  await Promise.all(replicas.flatMap((store) => Array.from({ length: concurrency }, () => caller(store))));
  const elapsed = performance.now() - started;
  return {
    replicas: replicaCount,
    callersPerReplica: concurrency,
    simulatedRoundTripMs: latencyMs,
    allocations: seen.size + duplicates,
    duplicates,
    writes: client.writes,
    conflicts: client.conflicts,
    casWritesPerAllocation: Number((client.writes / (seen.size + duplicates)).toFixed(4)),
    allocationsPerSecond: rate(seen.size + duplicates, elapsed),
  };
}

const result = {
  node: process.version,
  pureAllocationsPerSecond: pureAllocations(),
  configMapBytes: {
    ipv4Slash12: await configMapBytes('10.96.0.0/12'),
    ipv6Slash108: await configMapBytes('fd00:10:96::/108'),
  },
  casBatching: [
    await casBatching(1, 0),
    await casBatching(3, 0),
    await casBatching(1, 2),
    await casBatching(3, 2),
  ],
  sustained: [await sustained(100_000, 1, 64, 2), await sustained(100_000, 3, 64, 2)],
};
console.log(JSON.stringify(result, null, 2));
