/**
 * Benchmark of the LoadBalancer controller against the local API server, controller in-process:
 * creates N LoadBalancer Services (32 creates in flight by default) and measures, per Service, the time from
 * sending its create to seeing an ingress IP in its status through a watch; prints p50/p99 of
 * that latency and assignments/s over the whole run as one JSON object.
 *
 * Usage: node bench/loadbalancer.ts [services] [createsInFlight]
 */
import { performance } from 'node:perf_hooks';
import type { V1Service } from '@kubernetes/client-node';
import {
  loadBalancerService,
  startLoadBalancerTestCluster,
} from '../controllers/loadbalancer/test-cluster.ts';
import { Informer } from '../controllers/runtime/informer.ts';
import { createConnectionReuse } from '../controllers/runtime/kube.ts';
import { testLogger } from '../controllers/runtime/testing/harness.ts';

const services = Number(process.argv[2] ?? 1_000);
const inFlight = Number(process.argv[3] ?? 32);

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const logger = testLogger();
// A /20 holds 4,096 addresses, more than any run here asks for.
const cluster = await startLoadBalancerTestCluster({ bench: { addresses: ['198.18.192.0/20'] } }, logger);
try {
  const createdAt = new Map<string, number>();
  const latencies: number[] = [];
  const ips = new Set<string>();
  let lastAssignedAt = 0;
  let resolveAll: () => void = () => undefined;
  const allAssigned = new Promise<void>((resolve) => {
    resolveAll = resolve;
  });
  const watcher = new Informer<V1Service>({
    kubeConfig: cluster.kubeConfig,
    logger,
    path: '/api/v1/namespaces/default/services',
  });
  const observe = (service: V1Service) => {
    const name = service.metadata?.name ?? '';
    const ip = service.status?.loadBalancer?.ingress?.[0]?.ip;
    const started = createdAt.get(name);
    if (ip === undefined || started === undefined) return;
    createdAt.delete(name);
    const now = performance.now();
    latencies.push(now - started);
    ips.add(ip);
    lastAssignedAt = now;
    if (latencies.length === services) resolveAll();
  };
  watcher.addEventHandler({ onAdd: observe, onUpdate: (_old, service) => observe(service) });
  watcher.start();
  await watcher.waitForSync();

  // The creates share connections too, so the figure is the controller's, not the client's handshakes.
  const createOptions = createConnectionReuse()();
  const startedAt = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < services) {
      const name = `lb-${next++}`;
      createdAt.set(name, performance.now());
      await cluster.core.createNamespacedService(
        { namespace: 'default', body: loadBalancerService(name) },
        createOptions,
      );
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const createsDoneAt = performance.now();
  await allAssigned;
  await watcher.stop();

  latencies.sort((a, b) => a - b);
  const totalSeconds = (lastAssignedAt - startedAt) / 1000;
  process.stdout.write(
    `${JSON.stringify(
      {
        benchmark: 'loadbalancer',
        services,
        createsInFlight: inFlight,
        distinctIPs: ips.size,
        createToStatusIPMs: {
          p50: Number(percentile(latencies, 50).toFixed(1)),
          p99: Number(percentile(latencies, 99).toFixed(1)),
          max: Number((latencies.at(-1) ?? Number.NaN).toFixed(1)),
        },
        createsSeconds: Number(((createsDoneAt - startedAt) / 1000).toFixed(2)),
        totalSeconds: Number(totalSeconds.toFixed(2)),
        assignmentsPerSecond: Number((services / totalSeconds).toFixed(1)),
      },
      null,
      2,
    )}\n`,
  );
} finally {
  await cluster.close();
}
process.exit(0);
