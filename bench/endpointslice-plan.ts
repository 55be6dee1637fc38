/**
 * Benchmark of the pure EndpointSlice planner (no API server): how long a full sync of 10,000
 * Services × 10 pods takes to plan, how long a steady-state resync that writes nothing takes, and
 * how long planning one pod's readiness flip in a 1,000-pod Service takes. Prints one JSON object.
 *
 * Usage: node bench/endpointslice-plan.ts [services] [podsPerService] [bigServicePods]
 */
import { performance } from 'node:perf_hooks';
import type { V1EndpointSlice, V1Pod } from '@kubernetes/client-node';
import { planEndpointSlices } from '../controllers/endpointslice/plan.ts';
import {
  FakeSliceStore,
  ipv4At,
  makeNodes,
  makePod,
  makeService,
} from '../controllers/endpointslice/test-fixtures.ts';

const services = Number(process.argv[2] ?? 10_000);
const podsPerService = Number(process.argv[3] ?? 10);
const bigServicePods = Number(process.argv[4] ?? 1_000);
const flips = 200;

const nodeNames = Array.from({ length: 50 }, (_, i) => `node-${i}`);
const nodes = makeNodes(Object.fromEntries(nodeNames.map((name, i) => [name, `zone-${i % 3}`])));

function podsFor(service: number, count: number): V1Pod[] {
  return Array.from({ length: count }, (_, i) =>
    makePod({
      name: `svc${service}-pod-${i}`,
      ips: [ipv4At(service * count + i)],
      node: nodeNames[(service + i) % nodeNames.length]!,
      labels: { app: `svc${service}` },
    }),
  );
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

const fleet = Array.from({ length: services }, (_, i) => ({
  service: makeService({ name: `svc${i}`, uid: `uid-svc${i}`, selector: { app: `svc${i}` } }),
  pods: podsFor(i, podsPerService),
}));

const existingByService: V1EndpointSlice[][] = [];
let slicesCreated = 0;
let endpointsPlanned = 0;
let fullSyncMs = 0;
for (const { service, pods } of fleet) {
  const start = performance.now();
  const plan = planEndpointSlices(service, pods, nodes, []);
  fullSyncMs += performance.now() - start;
  slicesCreated += plan.create.length;
  for (const slice of plan.create) endpointsPlanned += slice.endpoints?.length ?? 0;
  // Applying (cloning, naming) stands in for the API server and is not part of the planner's time.
  const store = new FakeSliceStore();
  store.apply(plan);
  existingByService.push(store.list());
}

let steadyWrites = 0;
const steadyStart = performance.now();
fleet.forEach(({ service, pods }, i) => {
  const plan = planEndpointSlices(service, pods, nodes, existingByService[i]!);
  steadyWrites += plan.create.length + plan.update.length + plan.delete.length;
});
const steadyMs = performance.now() - steadyStart;

const big = makeService({ name: 'big', uid: 'uid-big', selector: { app: 'big' } });
const bigPods = Array.from({ length: bigServicePods }, (_, i) =>
  makePod({
    name: `big-${i}`,
    ips: [ipv4At(120_000 + i)],
    node: nodeNames[i % nodeNames.length]!,
    labels: { app: 'big' },
  }),
);
const bigStore = new FakeSliceStore();
bigStore.apply(planEndpointSlices(big, bigPods, nodes, []));
const flipTimes: number[] = [];
let flipWrites = 0;
for (let n = 0; n < flips; n++) {
  const index = (n * 37) % bigServicePods;
  const current = bigPods[index]!;
  const wasReady = current.status!.conditions![0]!.status === 'True';
  bigPods[index] = makePod({
    name: `big-${index}`,
    ips: [ipv4At(120_000 + index)],
    node: nodeNames[index % nodeNames.length]!,
    labels: { app: 'big' },
    ready: !wasReady,
  });
  const start = performance.now();
  const plan = planEndpointSlices(big, bigPods, nodes, bigStore.list());
  flipTimes.push(performance.now() - start);
  flipWrites += plan.create.length + plan.update.length + plan.delete.length;
  bigStore.apply(plan);
}
flipTimes.sort((a, b) => a - b);

console.log(
  JSON.stringify(
    {
      benchmark: 'endpointslice-plan',
      node: process.version,
      fullSync: {
        services,
        podsPerService,
        pods: services * podsPerService,
        slicesCreated,
        endpointsPlanned,
        planMs: round(fullSyncMs),
        perServiceUs: round((fullSyncMs / services) * 1000),
      },
      steadyResync: { planMs: round(steadyMs), writes: steadyWrites },
      podFlipInLargeService: {
        pods: bigServicePods,
        slices: bigStore.list().length,
        flips,
        slicesWrittenPerFlip: flipWrites / flips,
        p50Ms: round(percentile(flipTimes, 50)),
        p99Ms: round(percentile(flipTimes, 99)),
        maxMs: round(flipTimes[flipTimes.length - 1]!),
      },
      heapUsedMiB: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    },
    null,
    2,
  ),
);
