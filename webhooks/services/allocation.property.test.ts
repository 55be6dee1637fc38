/**
 * Property: whatever the interleaving of creates (dynamic or requested values), lost creates
 * (allocated, never stored: a replica died), deletes with releases, and replica restarts across
 * three webhook replicas sharing one set of ConfigMaps, no two stored Services ever hold the same
 * ClusterIP or node port; and after a repair pass past the grace period the bitmaps hold exactly
 * the values the stored Services hold.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Service } from '@kubernetes/client-node';
import fc from 'fast-check';
import { parseServiceClusterIPRanges } from '../../allocators/cluster-ip-range.ts';
import { InMemoryConfigMapClient } from '../../allocators/memory-configmap-client.ts';
import { NodePortRange } from '../../allocators/node-port-range.ts';
import { AllocatorRepairController } from '../../controllers/allocator-repair/controller.ts';
import { testLogger } from '../../controllers/runtime/testing/harness.ts';
import { ServiceAllocationReleaser } from '../../controllers/service-allocations/release.ts';
import type { AdmissionResponse, JsonPatchOperation } from '../admission.ts';
import { ServiceAllocators } from './allocators.ts';
import { CLUSTER_IP_INDEX, heldClusterIPs, heldNodePorts, NODE_PORT_INDEX } from './held.ts';
import { mutateServices } from './mutate.ts';

type Operation =
  | {
      kind: 'create';
      replica: number;
      nodePort: boolean;
      requestedIP?: number;
      requestedPort?: number;
      lost: boolean;
    }
  | { kind: 'delete'; pick: number }
  | { kind: 'restart'; replica: number };

const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      replica: fc.nat(2),
      nodePort: fc.boolean(),
      requestedIP: fc.option(fc.nat(5), { nil: undefined }),
      requestedPort: fc.option(fc.nat(5), { nil: undefined }),
      lost: fc.nat(9).map((roll) => roll < 3),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), replica: fc.nat(2) }) },
);

function applyPatch(service: V1Service, response: AdmissionResponse): V1Service {
  const result = structuredClone(service);
  if (response.patch === undefined) return result;
  const spec = result.spec as Record<string, unknown>;
  for (const op of JSON.parse(Buffer.from(response.patch, 'base64').toString()) as JsonPatchOperation[]) {
    const key = op.path.replace('/spec/', '');
    if (op.op === 'remove') delete spec[key];
    else spec[key] = op.value;
  }
  return result;
}

async function runScenario(rounds: readonly (readonly Operation[])[]): Promise<void> {
  const client = new InMemoryConfigMapClient();
  const ranges = {
    serviceCIDRs: parseServiceClusterIPRanges('198.19.0.0/27'),
    nodePortRange: new NodePortRange('30000-30031'),
  };
  const newReplica = () =>
    new ServiceAllocators({
      client,
      namespace: 'portico-system',
      ranges,
      storeTuning: { initialBackoffMs: 0.1, maxBackoffMs: 1 },
    });
  const replicas = [newReplica(), newReplica(), newReplica()];
  const stored = new Map<string, V1Service>();
  const cache = {
    list: () => [...stored.values()],
    get: (key: string) => stored.get(key),
    hasSynced: () => true,
    byIndex: (index: string, value: string) =>
      [...stored.values()].filter((service) =>
        index === CLUSTER_IP_INDEX
          ? heldClusterIPs(service).includes(value)
          : index === NODE_PORT_INDEX && heldNodePorts(service).map(String).includes(value),
      ),
  };
  const logger = testLogger();
  let serial = 0;

  const run = async (op: Operation) => {
    if (op.kind === 'restart') {
      replicas[op.replica] = newReplica();
      return;
    }
    if (op.kind === 'delete') {
      const names = [...stored.keys()];
      if (names.length === 0) return;
      const key = names[op.pick % names.length]!;
      const service = stored.get(key)!;
      stored.delete(key);
      const releaser = new ServiceAllocationReleaser({
        allocators: replicas[0]!,
        services: cache,
        logger,
        maxPendingAgeMs: 60_000,
      });
      const pending = releaser.serviceDeleted(service);
      if (pending !== undefined) await releaser.reconcile(pending);
      return;
    }
    serial++;
    const name = `s-${serial}`;
    const service: V1Service = {
      metadata: { name, namespace: 'default' },
      spec: {
        type: op.nodePort ? 'NodePort' : 'ClusterIP',
        selector: { app: name },
        ports: [
          {
            port: 80,
            ...(op.nodePort && op.requestedPort !== undefined ? { nodePort: 30000 + op.requestedPort } : {}),
          },
        ],
        ...(op.requestedIP !== undefined ? { clusterIP: `198.19.0.${op.requestedIP + 1}` } : {}),
      },
    };
    const response = await mutateServices(replicas[op.replica]!)({
      uid: name,
      operation: 'CREATE',
      name,
      namespace: 'default',
      object: service,
    });
    if (!response.allowed) {
      assert.ok(
        response.status!.code === 422 || response.status!.code === 500,
        JSON.stringify(response.status),
      );
      return;
    }
    if (op.lost) return;
    const admitted = applyPatch(service, response);
    for (const other of stored.values()) {
      for (const ip of heldClusterIPs(admitted))
        assert.ok(!heldClusterIPs(other).includes(ip), `${ip} handed out twice`);
      for (const port of heldNodePorts(admitted))
        assert.ok(!heldNodePorts(other).includes(port), `${port} handed out twice`);
    }
    stored.set(`default/${name}`, admitted);
  };

  for (const round of rounds) await Promise.all(round.map(run));

  const repair = new AllocatorRepairController({
    allocators: replicas[0]!,
    services: cache,
    events: { event: async () => {} },
    logger,
    intervalMs: 1000,
    leakGracePeriodMs: 0,
  });
  const results = await repair.repairOnce();
  for (const { plan } of results) assert.deepEqual(plan.problems, []);
  const ipAllocator = replicas[0]!.clusterIP('IPv4')!.newAllocator();
  ipAllocator.restore(await replicas[0]!.clusterIP('IPv4')!.store.read());
  const portAllocator = replicas[0]!.nodePorts.newAllocator();
  portAllocator.restore(await replicas[0]!.nodePorts.store.read());
  const services = [...stored.values()];
  assert.deepEqual([...ipAllocator.allocated()].sort(), services.flatMap(heldClusterIPs).sort());
  assert.deepEqual(
    [...portAllocator.allocated()].sort(),
    services.flatMap(heldNodePorts).sort((a, b) => a - b),
  );
}

describe('Service allocation across replicas (property)', () => {
  test('never two owners; after repair the bitmaps hold exactly what Services hold', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(operation, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 12 }),
        runScenario,
      ),
      { numRuns: 60 },
    );
  });
});
