import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import fc from 'fast-check';
import { type EndpointSlicePlan, type PlanEndpointSlicesOptions, planEndpointSlices } from './plan.ts';
import { FakeSliceStore, makeCapacityNodes, makePod, makeService } from './test-fixtures.ts';
import { parseQuantityMillis, TOPOLOGY_MESSAGES, zoneCapacityOf } from './topology-hints.ts';

const AUTO = { 'service.kubernetes.io/topology-mode': 'Auto' };
const ENABLED = {
  type: 'Normal',
  reason: 'TopologyAwareHintsEnabled',
  message: 'Topology Aware Hints has been enabled, addressType: IPv4',
};

/** `count` ready pods on each listed node, named after the node. */
function podsOn(spread: Record<string, number>): V1Pod[] {
  const pods: V1Pod[] = [];
  let address = 1;
  for (const [node, count] of Object.entries(spread)) {
    for (let i = 0; i < count; i++) {
      pods.push(makePod({ name: `${node}-${i}`, ips: [`198.18.0.${address++}`], node }));
    }
  }
  return pods;
}

/** Zone hinted for each ready endpoint, by pod name. */
function hintsByPod(slices: readonly V1EndpointSlice[]): Record<string, string[] | undefined> {
  const hints: Record<string, string[] | undefined> = {};
  for (const slice of slices) {
    for (const endpoint of slice.endpoints ?? []) {
      hints[endpoint.targetRef!.name!] = endpoint.hints?.forZones?.map((zone) => zone.name);
    }
  }
  return hints;
}

/** Number of ready endpoints hinted for each zone. */
function hintCounts(slices: readonly V1EndpointSlice[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const zones of Object.values(hintsByPod(slices))) {
    for (const zone of zones ?? []) counts[zone] = (counts[zone] ?? 0) + 1;
  }
  return counts;
}

function isEmpty(plan: EndpointSlicePlan): boolean {
  return plan.create.length === 0 && plan.update.length === 0 && plan.delete.length === 0;
}

/**
 * Plans and applies, then plans again with the state the reconciler would carry over: the second
 * plan must write nothing and repeat no Event but a Warning (upstream repeats those every sync).
 */
function converge(
  store: FakeSliceStore,
  service: V1Service,
  pods: V1Pod[],
  nodes: Map<string, V1Node>,
  options: PlanEndpointSlicesOptions = {},
): EndpointSlicePlan {
  const plan = planEndpointSlices(service, pods, nodes, store.list(), options);
  store.apply(plan);
  const again = planEndpointSlices(service, pods, nodes, store.list(), {
    ...options,
    topologyHintsPopulated: plan.topologyHintsPopulated,
  });
  assert.ok(isEmpty(again), `second plan is not empty: ${JSON.stringify(again)}`);
  assert.ok(again.events.every((event) => event.type === 'Warning'));
  return plan;
}

describe('parseQuantityMillis', () => {
  const cases: [string, number | undefined][] = [
    ['4', 4000],
    ['3500m', 3500],
    ['1.5', 1500],
    ['0.1', 100],
    ['.5', 500],
    ['250u', 1],
    ['2k', 2_000_000],
    ['1Ki', 1_024_000],
    ['5e2', 500_000],
    ['0', 0],
    ['', undefined],
    ['4 cores', undefined],
    ['1.2.3', undefined],
  ];
  for (const [text, millis] of cases) {
    test(`${JSON.stringify(text)} is ${millis} thousandths`, () => {
      assert.equal(parseQuantityMillis(text), millis);
    });
  }
});

describe('zoneCapacityOf', () => {
  test('shares of allocatable CPU by zone, from ready worker nodes only', () => {
    const capacity = zoneCapacityOf(
      makeCapacityNodes({
        a1: { zone: 'zone-a', cpu: '3' },
        a2: { zone: 'zone-a', cpu: '1000m' },
        b1: { zone: 'zone-b', cpu: '4' },
        down: { zone: 'zone-b', cpu: '64', ready: false },
        master: { zone: 'zone-c', cpu: '8', labels: { 'node-role.kubernetes.io/control-plane': '' } },
      }).values(),
    );
    assert.deepEqual(capacity, {
      sufficient: true,
      cpuRatioByZone: new Map([
        ['zone-a', 0.5],
        ['zone-b', 0.5],
      ]),
    });
  });

  test('one node without a zone or allocatable CPU makes the capacity unknown', () => {
    for (const odd of [{ cpu: '4' }, { zone: 'zone-b' }, { zone: 'zone-b', cpu: '0' }]) {
      const nodes = makeCapacityNodes({ a: { zone: 'zone-a', cpu: '4' }, odd });
      assert.deepEqual(zoneCapacityOf(nodes.values()), {
        sufficient: false,
        reason: TOPOLOGY_MESSAGES.insufficientNodeInfo,
      });
    }
  });

  test('ready nodes in one zone only', () => {
    const nodes = makeCapacityNodes({
      a: { zone: 'zone-a', cpu: '4' },
      b: { zone: 'zone-b', cpu: '4', ready: false },
    });
    assert.deepEqual(zoneCapacityOf(nodes.values()), {
      sufficient: false,
      reason: TOPOLOGY_MESSAGES.nodesReadyInOneZoneOnly,
    });
  });
});

const threeZones = makeCapacityNodes({
  'node-a': { zone: 'zone-a', cpu: '4' },
  'node-b': { zone: 'zone-b', cpu: '4' },
  'node-c': { zone: 'zone-c', cpu: '4' },
});

describe('planEndpointSlices: topology-mode Auto', () => {
  const cases: {
    name: string;
    service: V1Service;
    nodes: Map<string, V1Node>;
    pods: V1Pod[];
    options?: PlanEndpointSlicesOptions;
    hints: Record<string, number>;
    event?: { type: string; reason: string; message: string };
  }[] = [
    {
      name: 'balanced zones: every endpoint is hinted for its own zone',
      service: makeService({ annotations: AUTO }),
      nodes: threeZones,
      pods: podsOn({ 'node-a': 2, 'node-b': 2, 'node-c': 2 }),
      hints: { 'zone-a': 2, 'zone-b': 2, 'zone-c': 2 },
      event: ENABLED,
    },
    {
      name: 'the deprecated topology-aware-hints: auto annotation works the same',
      service: makeService({ annotations: { 'service.kubernetes.io/topology-aware-hints': 'auto' } }),
      nodes: threeZones,
      pods: podsOn({ 'node-a': 1, 'node-b': 1, 'node-c': 1 }),
      hints: { 'zone-a': 1, 'zone-b': 1, 'zone-c': 1 },
      event: ENABLED,
    },
    {
      name: 'hints follow CPU: a zone with twice the CPU is hinted twice the endpoints',
      service: makeService({ annotations: AUTO }),
      nodes: makeCapacityNodes({
        'node-a': { zone: 'zone-a', cpu: '8' },
        'node-b': { zone: 'zone-b', cpu: '4000m' },
      }),
      pods: podsOn({ 'node-a': 3, 'node-b': 3 }),
      hints: { 'zone-a': 4, 'zone-b': 2 },
      event: ENABLED,
    },
    {
      name: 'a surplus under half an endpoint stays where it is, and is not rewritten on every sync',
      service: makeService({ annotations: AUTO }),
      nodes: makeCapacityNodes({
        'node-a': { zone: 'zone-a', cpu: '3' },
        'node-b': { zone: 'zone-b', cpu: '1' },
        'node-c': { zone: 'zone-c', cpu: '10' },
      }),
      pods: podsOn({ 'node-a': 1, 'node-c': 4 }),
      options: { maxEndpointsPerSlice: 5 },
      hints: { 'zone-a': 1, 'zone-c': 4 },
      event: ENABLED,
    },
    {
      name: 'an overloaded zone removes hints',
      service: makeService({ annotations: AUTO }),
      nodes: makeCapacityNodes({
        'node-a': { zone: 'zone-a', cpu: '1' },
        'node-b': { zone: 'zone-b', cpu: '1' },
        'node-c': { zone: 'zone-c', cpu: '8' },
      }),
      pods: podsOn({ 'node-a': 1, 'node-b': 1, 'node-c': 1 }),
      hints: {},
      event: {
        type: 'Warning',
        reason: 'TopologyAwareHintsDisabled',
        message:
          'Unable to allocate minimum required endpoints to each zone without exceeding overload threshold (3 endpoints, 3 zones), addressType: IPv4',
      },
    },
    {
      name: 'a node without a zone removes hints',
      service: makeService({ annotations: AUTO }),
      nodes: new Map([...threeZones, ...makeCapacityNodes({ 'node-z': { cpu: '4' } })]),
      pods: podsOn({ 'node-a': 2, 'node-b': 2, 'node-c': 2 }),
      hints: {},
      event: {
        type: 'Warning',
        reason: 'TopologyAwareHintsDisabled',
        message: `${TOPOLOGY_MESSAGES.insufficientNodeInfo}, addressType: IPv4`,
      },
    },
    {
      name: 'an endpoint without a zone removes hints',
      service: makeService({ annotations: AUTO }),
      nodes: new Map([...threeZones, ...makeCapacityNodes({ 'node-z': { cpu: '4' } })]),
      pods: podsOn({ 'node-a': 2, 'node-b': 2, 'node-c': 2, 'node-z': 1 }),
      options: { zoneCapacity: zoneCapacityOf(threeZones.values()) },
      hints: {},
      event: {
        type: 'Warning',
        reason: 'TopologyAwareHintsDisabled',
        message: 'One or more endpoints do not have a zone specified, addressType: IPv4',
      },
    },
    {
      name: 'fewer endpoints than zones removes hints',
      service: makeService({ annotations: AUTO }),
      nodes: threeZones,
      pods: podsOn({ 'node-a': 1, 'node-b': 1 }),
      hints: {},
      event: {
        type: 'Warning',
        reason: 'TopologyAwareHintsDisabled',
        message: 'Insufficient number of endpoints (2 endpoints, 3 zones), addressType: IPv4',
      },
    },
    {
      name: 'annotation off: no hints and no Event',
      service: makeService({ annotations: { 'service.kubernetes.io/topology-mode': 'Disabled' } }),
      nodes: threeZones,
      pods: podsOn({ 'node-a': 2, 'node-b': 2, 'node-c': 2 }),
      hints: {},
    },
    {
      name: 'the annotation wins over trafficDistribution, even when it can give no hints',
      service: makeService({ annotations: AUTO, trafficDistribution: 'PreferClose' }),
      nodes: threeZones,
      pods: podsOn({ 'node-a': 1, 'node-b': 1 }),
      hints: {},
      event: {
        type: 'Warning',
        reason: 'TopologyAwareHintsDisabled',
        message: 'Insufficient number of endpoints (2 endpoints, 3 zones), addressType: IPv4',
      },
    },
  ];
  for (const { name, service, nodes, pods, options, hints, event } of cases) {
    test(name, () => {
      const store = new FakeSliceStore();
      const plan = converge(store, service, pods, nodes, options);
      assert.deepEqual(hintCounts(store.list()), hints);
      assert.deepEqual(plan.events, event === undefined ? [] : [event]);
      assert.equal(plan.topologyHintsPopulated, Object.keys(hints).length > 0);
    });
  }

  test('not-ready endpoints get no hints and do not count', () => {
    const store = new FakeSliceStore();
    const pods = [
      ...podsOn({ 'node-a': 1, 'node-b': 1, 'node-c': 1 }),
      makePod({ name: 'slow', ips: ['198.18.1.1'], node: 'node-a', ready: false }),
    ];
    converge(store, makeService({ annotations: AUTO }), pods, threeZones);
    assert.deepEqual(hintsByPod(store.list()), {
      'node-a-0': ['zone-a'],
      'node-b-0': ['zone-b'],
      'node-c-0': ['zone-c'],
      slow: undefined,
    });
  });

  test('a change of CPU shares rewrites the slices whose hints no longer fit', () => {
    const store = new FakeSliceStore();
    const service = makeService({ annotations: AUTO });
    const pods = podsOn({ 'node-a': 2, 'node-b': 2 });
    const equal = makeCapacityNodes({
      'node-a': { zone: 'zone-a', cpu: '2' },
      'node-b': { zone: 'zone-b', cpu: '2' },
    });
    const first = converge(store, service, pods, equal);
    assert.deepEqual(hintCounts(store.list()), { 'zone-a': 2, 'zone-b': 2 });
    const grown = makeCapacityNodes({
      'node-a': { zone: 'zone-a', cpu: '6' },
      'node-b': { zone: 'zone-b', cpu: '2' },
    });
    const plan = converge(store, service, pods, grown, {
      topologyHintsPopulated: first.topologyHintsPopulated,
    });
    assert.equal(plan.update.length, 1);
    assert.deepEqual(plan.events, [], 'hints stay on: no second Enabled Event');
    assert.deepEqual(hintCounts(store.list()), { 'zone-a': 3, 'zone-b': 1 });
  });

  test('removing the annotation strips the hints once, with a TopologyAwareHintsDisabled Event', () => {
    const store = new FakeSliceStore();
    const pods = podsOn({ 'node-a': 2, 'node-b': 2, 'node-c': 2 });
    const on = converge(store, makeService({ annotations: AUTO }), pods, threeZones);
    assert.equal(on.topologyHintsPopulated, true);
    const off = converge(store, makeService(), pods, threeZones, { topologyHintsPopulated: true });
    assert.equal(off.update.length, 1);
    assert.deepEqual(hintCounts(store.list()), {});
    assert.deepEqual(off.events, [
      {
        type: 'Warning',
        reason: 'TopologyAwareHintsDisabled',
        message: 'Topology Aware Hints has been disabled, addressType: IPv4',
      },
    ]);
    assert.equal(off.topologyHintsPopulated, false);
  });

  test('removing the annotation hands over to trafficDistribution', () => {
    const store = new FakeSliceStore();
    const pods = podsOn({ 'node-a': 2, 'node-b': 2 });
    const cpu = makeCapacityNodes({
      'node-a': { zone: 'zone-a', cpu: '6' },
      'node-b': { zone: 'zone-b', cpu: '2' },
    });
    converge(store, makeService({ annotations: AUTO, trafficDistribution: 'PreferClose' }), pods, cpu);
    assert.deepEqual(hintCounts(store.list()), { 'zone-a': 3, 'zone-b': 1 }, 'CPU-proportional first');
    converge(store, makeService({ trafficDistribution: 'PreferClose' }), pods, cpu, {
      topologyHintsPopulated: true,
    });
    assert.deepEqual(hintCounts(store.list()), { 'zone-a': 2, 'zone-b': 2 }, 'then each to its own zone');
  });
});

describe('planEndpointSlices: topology-mode Auto properties', () => {
  test('any CPU split and pod placement converges and hints all ready endpoints or none', () => {
    const zones = ['zone-a', 'zone-b', 'zone-c'];
    const scenario = fc.record({
      cpus: fc.tuple(
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 16 }),
      ),
      steps: fc.array(
        fc.array(fc.record({ zone: fc.integer({ min: 0, max: 2 }), ready: fc.boolean() }), { maxLength: 60 }),
        { minLength: 1, maxLength: 4 },
      ),
      max: fc.constantFrom(5, 100),
    });
    fc.assert(
      fc.property(scenario, ({ cpus, steps, max }) => {
        const nodes = makeCapacityNodes(
          Object.fromEntries(zones.map((zone, i) => [`node-${i}`, { zone, cpu: String(cpus[i]) }])),
        );
        const store = new FakeSliceStore();
        const service = makeService({ annotations: AUTO });
        let populated = false;
        for (const placement of steps) {
          const pods = placement.map(({ zone, ready }, i) =>
            makePod({ name: `pod-${i}`, ips: [`198.18.0.${i + 1}`], node: `node-${zone}`, ready }),
          );
          const plan = converge(store, service, pods, nodes, {
            maxEndpointsPerSlice: max,
            topologyHintsPopulated: populated,
          });
          populated = plan.topologyHintsPopulated;
          const ready = store
            .list()
            .flatMap((slice) => (slice.endpoints ?? []).filter((e) => e.conditions?.ready));
          const hinted = ready.filter((endpoint) => endpoint.hints?.forZones?.length === 1);
          assert.ok(
            hinted.length === 0 || hinted.length === ready.length,
            'all ready endpoints hinted, or none',
          );
          assert.equal(populated, hinted.length > 0);
          const counts = Object.values(hintCounts(store.list()));
          assert.equal(
            counts.reduce((sum, count) => sum + count, 0),
            hinted.length,
          );
        }
      }),
      { numRuns: 150 },
    );
  });
});
