import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Service } from '@kubernetes/client-node';
import fc from 'fast-check';
import { ClusterIPAllocator, NodePortAllocator } from './allocator.ts';
import { Bitmap } from './bitmap.ts';
import { ClusterIPRange } from './cluster-ip-range.ts';
import { ConfigMapAllocationStore } from './configmap-store.ts';
import { InMemoryConfigMapClient } from './memory-configmap-client.ts';
import { NodePortRange } from './node-port-range.ts';
import {
  applyRepair,
  clusterIPAllocationsOf,
  nodePortAllocationsOf,
  planRepair,
  type ServiceAllocations,
} from './repair.ts';

const ipRange = new ClusterIPRange('10.0.0.0/24');
const portRange = new NodePortRange();

function bitmapOf<T extends string | number>(
  range: { size: number; offsetOf(value: T): number | undefined },
  values: T[],
): Bitmap {
  const bitmap = new Bitmap(range.size);
  for (const value of values) bitmap.set(range.offsetOf(value)!);
  return bitmap;
}

function svc<T extends string | number>(name: string, ...values: T[]): ServiceAllocations<T> {
  return { namespace: 'default', name, values };
}

describe('planRepair', () => {
  test('a Service IP missing from the bitmap is marked and reported as ClusterIPNotAllocated', () => {
    const plan = planRepair(
      [svc('web', '10.0.0.20')],
      { range: ipRange, bitmap: new Bitmap(ipRange.size) },
      0,
      new Map(),
      0,
    );
    assert.deepEqual([...plan.bitmap.setIndexes()], [19]);
    assert.equal(plan.changed, true);
    assert.deepEqual(plan.marked, [
      {
        namespace: 'default',
        name: 'web',
        value: '10.0.0.20',
        reason: 'ClusterIPNotAllocated',
        message: 'Cluster IP [IPv4]:10.0.0.20 is not allocated; repairing',
      },
    ]);
  });

  test('a leak is kept during the grace period and freed after it', () => {
    const bitmap = bitmapOf(ipRange, ['10.0.0.20', '10.0.0.30']);
    const services = [svc('web', '10.0.0.20')];
    const first = planRepair(services, { range: ipRange, bitmap }, 1000, new Map(), 60_000);
    assert.deepEqual(first.leaksPending, ['10.0.0.30']);
    assert.deepEqual(first.leaksFreed, []);
    assert.equal(first.changed, false);
    assert.deepEqual([...first.seenUnusedSince], [[29, 1000]]);
    const early = planRepair(
      services,
      { range: ipRange, bitmap: first.bitmap },
      60_999,
      first.seenUnusedSince,
      60_000,
    );
    assert.deepEqual(early.leaksFreed, [], 'one millisecond short of the grace period');
    const late = planRepair(
      services,
      { range: ipRange, bitmap: early.bitmap },
      61_000,
      early.seenUnusedSince,
      60_000,
    );
    assert.deepEqual(late.leaksFreed, ['10.0.0.30']);
    assert.deepEqual([...late.bitmap.setIndexes()], [19]);
    assert.equal(late.seenUnusedSince.size, 0);
  });

  test('a leak whose Service shows up resets its clock', () => {
    const bitmap = bitmapOf(ipRange, ['10.0.0.30']);
    const first = planRepair([], { range: ipRange, bitmap }, 0, new Map(), 100);
    const owned = planRepair(
      [svc('late', '10.0.0.30')],
      { range: ipRange, bitmap },
      50,
      first.seenUnusedSince,
      100,
    );
    assert.equal(owned.seenUnusedSince.size, 0);
    const unusedAgain = planRepair([], { range: ipRange, bitmap }, 120, owned.seenUnusedSince, 100);
    assert.deepEqual(unusedAgain.leaksFreed, [], 'the clock restarted at 120');
  });

  test('a shared IP is reported on both Services, each naming the other, and stays allocated', () => {
    const bitmap = bitmapOf(ipRange, ['10.0.0.5']);
    const plan = planRepair(
      [svc('a', '10.0.0.5'), { namespace: 'team', name: 'b', values: ['10.0.0.5'] }],
      { range: ipRange, bitmap },
      0,
      new Map(),
      0,
    );
    assert.deepEqual(
      plan.problems.map((problem) => [problem.name, problem.reason, problem.otherService, problem.message]),
      [
        [
          'a',
          'ClusterIPAlreadyAllocated',
          'team/b',
          'Cluster IP [IPv4]:10.0.0.5 was assigned to multiple services (also team/b); please recreate service',
        ],
        [
          'b',
          'ClusterIPAlreadyAllocated',
          'default/a',
          'Cluster IP [IPv4]:10.0.0.5 was assigned to multiple services (also default/a); please recreate service',
        ],
      ],
    );
    assert.equal(plan.bitmap.test(4), true);
  });

  test('out-of-range and invalid IPs are reported; the other family is left to its own pass', () => {
    const plan = planRepair(
      [svc('far', '10.1.0.5'), svc('broadcast', '10.0.0.255'), svc('bad', 'banana'), svc('v6', 'fd00::5')],
      { range: ipRange, bitmap: new Bitmap(ipRange.size) },
      0,
      new Map(),
      0,
    );
    assert.deepEqual(
      plan.problems.map((problem) => [problem.name, problem.reason, problem.message]),
      [
        [
          'far',
          'ClusterIPOutOfRange',
          'Cluster IP [IPv4]:10.1.0.5 is not within the configured Service CIDR 10.0.0.0/24; please recreate service',
        ],
        [
          'broadcast',
          'ClusterIPOutOfRange',
          'Cluster IP [IPv4]:10.0.0.255 is not within the configured Service CIDR 10.0.0.0/24; please recreate service',
        ],
        ['bad', 'ClusterIPNotValid', 'Cluster IP [IPv4]:banana is not a valid IP; please recreate service'],
      ],
    );
    assert.equal(plan.bitmap.count, 0);
  });

  test('node ports: TCP and UDP sharing one port is one allocation, not a duplicate', () => {
    const plan = planRepair(
      [svc('dns', 30053, 30053), svc('web', 30080), svc('clash', 30080), svc('low', 29999)],
      { range: portRange, bitmap: bitmapOf(portRange, [30053]) },
      0,
      new Map(),
      0,
    );
    assert.deepEqual(
      plan.problems.map((problem) => [problem.name, problem.reason, problem.message]),
      [
        [
          'low',
          'PortOutOfRange',
          'Port 29999 is not within the port range 30000-32767; please recreate service',
        ],
        [
          'web',
          'PortAlreadyAllocated',
          'Port 30080 was assigned to multiple services (also default/clash); please recreate service',
        ],
        [
          'clash',
          'PortAlreadyAllocated',
          'Port 30080 was assigned to multiple services (also default/web); please recreate service',
        ],
      ],
    );
    assert.deepEqual(
      plan.marked.map((marked) => [marked.name, marked.reason, marked.message]),
      [
        ['web', 'PortNotAllocated', 'Port 30080 is not allocated; repairing'],
        ['clash', 'PortNotAllocated', 'Port 30080 is not allocated; repairing'],
      ],
    );
    assert.deepEqual([...plan.bitmap.setIndexes()], [53, 80]);
  });

  test('after a repair past the grace period the bitmap holds exactly the Services’ values (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: 29990, max: 30060 }), { maxLength: 4 }), { maxLength: 30 }),
        fc.uniqueArray(fc.nat(portRange.size - 1), { maxLength: 80 }),
        fc.integer({ min: 0, max: 10_000 }),
        (portsPerService, storedOffsets, grace) => {
          const services = portsPerService.map((ports, i) => svc(`svc-${i}`, ...ports));
          const stored = new Bitmap(portRange.size);
          for (const offset of storedOffsets) stored.set(offset);
          const first = planRepair(services, { range: portRange, bitmap: stored }, 0, new Map(), grace);
          const used = new Set(
            services.flatMap((service) => service.values).filter((port) => portRange.contains(port)),
          );
          for (const port of used)
            assert.ok(first.bitmap.test(port - portRange.base), `${port} marked on the first pass`);
          const second = planRepair(
            services,
            { range: portRange, bitmap: first.bitmap },
            grace,
            first.seenUnusedSince,
            grace,
          );
          assert.deepEqual(
            [...second.bitmap.setIndexes()],
            [...used].map((port) => port - portRange.base).sort((a, b) => a - b),
          );
        },
      ),
    );
  });
});

describe('applyRepair through the ConfigMap store', () => {
  test('repairs against the state it overwrites and frees leaks after the grace period', async () => {
    const client = new InMemoryConfigMapClient();
    const store = new ConfigMapAllocationStore<number>({
      client,
      namespace: 'portico-system',
      name: 'portico-nodeport',
      newAllocator: () => new NodePortAllocator(),
      sleep: async () => {},
    });
    await store.allocate(30100);
    await store.allocate(30200);
    const services = [svc('kept', 30100), svc('unmarked', 30300)];
    let injected = 0;
    client.injectConflict = () => injected++ === 0;
    const first = await applyRepair(store, services, 0, new Map(), 1000);
    assert.deepEqual(first.leaksPending, [30200]);
    assert.deepEqual([...(await store.read()).bitmap.setIndexes()], [100, 200, 300]);
    const second = await applyRepair(store, services, 1000, first.seenUnusedSince, 1000);
    assert.deepEqual(second.leaksFreed, [30200]);
    assert.deepEqual([...(await store.read()).bitmap.setIndexes()], [100, 300]);
  });
});

describe('extracting allocations from Services', () => {
  const services: V1Service[] = [
    {
      metadata: { namespace: 'default', name: 'web' },
      spec: { clusterIP: '10.0.0.20', clusterIPs: ['10.0.0.20', 'fd00::14'] },
    },
    {
      metadata: { namespace: 'default', name: 'headless' },
      spec: { clusterIP: 'None', clusterIPs: ['None'] },
    },
    { metadata: { namespace: 'default', name: 'old' }, spec: { clusterIP: '10.0.0.21' } },
    {
      metadata: { namespace: 'default', name: 'lb' },
      spec: {
        clusterIP: '10.0.0.22',
        healthCheckNodePort: 31000,
        ports: [
          { port: 53, protocol: 'TCP', nodePort: 30053 },
          { port: 53, protocol: 'UDP', nodePort: 30053 },
          { port: 80 },
        ],
      },
    },
  ];

  test('ClusterIPs skip None and fall back to clusterIP', () => {
    assert.deepEqual(
      clusterIPAllocationsOf(services).map((service) => service.values),
      [['10.0.0.20', 'fd00::14'], [], ['10.0.0.21'], ['10.0.0.22']],
    );
  });

  test('node ports include healthCheckNodePort', () => {
    assert.deepEqual(
      nodePortAllocationsOf(services).map((service) => service.values),
      [[], [], [], [30053, 30053, 31000]],
    );
  });

  test('an IPv4 repair pass ignores the IPv6 ClusterIPs', () => {
    const ipv4 = new ClusterIPAllocator('10.0.0.0/24').range;
    const plan = planRepair(
      clusterIPAllocationsOf(services),
      { range: ipv4, bitmap: new Bitmap(ipv4.size) },
      0,
      new Map(),
      0,
    );
    assert.deepEqual(plan.problems, []);
    assert.deepEqual([...plan.bitmap.setIndexes()], [19, 20, 21]);
  });
});
