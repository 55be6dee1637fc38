import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice, V1Pod } from '@kubernetes/client-node';
import fc from 'fast-check';
import {
  type EndpointSlicePlan,
  endpointSlicePrefix,
  type PlanEndpointSlicesOptions,
  planEndpointSlices,
  validateMaxEndpointsPerSlice,
} from './plan.ts';
import { FakeSliceStore, ipv4At, makeNodes, makePod, makePods, makeService } from './test-fixtures.ts';

const nodes = makeNodes({ 'node-a': 'zone-a', 'node-b': 'zone-b', 'node-c': 'zone-c' });

function sizes(slices: readonly V1EndpointSlice[]): number[] {
  return slices.map((slice) => slice.endpoints?.length ?? 0).sort((a, b) => b - a);
}

function isEmpty(plan: EndpointSlicePlan): boolean {
  return plan.create.length === 0 && plan.update.length === 0 && plan.delete.length === 0;
}

function podNames(slices: readonly V1EndpointSlice[]): string[] {
  return slices.flatMap((slice) => (slice.endpoints ?? []).map((e) => e.targetRef!.name!)).sort();
}

/** Plans, applies, and checks that planning again over the result writes nothing. */
function converge(
  store: FakeSliceStore,
  pods: V1Pod[],
  service = makeService(),
  options: PlanEndpointSlicesOptions = {},
): EndpointSlicePlan {
  const plan = planEndpointSlices(service, pods, nodes, store.list(), options);
  store.apply(plan);
  const again = planEndpointSlices(service, pods, nodes, store.list(), options);
  assert.ok(isEmpty(again), `second plan is not empty: ${JSON.stringify(again)}`);
  return plan;
}

function sliceOf(store: FakeSliceStore, podName: string): V1EndpointSlice {
  const found = store.list().find((slice) => slice.endpoints?.some((e) => e.targetRef?.name === podName));
  assert.ok(found, `no slice holds ${podName}`);
  return found;
}

describe('planEndpointSlices: slice counts', () => {
  const cases: { endpoints: number; max?: number; expected: number[] }[] = [
    { endpoints: 0, expected: [0] },
    { endpoints: 1, expected: [1] },
    { endpoints: 100, expected: [100] },
    { endpoints: 101, expected: [100, 1] },
    { endpoints: 250, expected: [100, 100, 50] },
    { endpoints: 1001, expected: [...Array(10).fill(100), 1] },
    { endpoints: 1001, max: 1000, expected: [1000, 1] },
  ];
  for (const { endpoints, max, expected } of cases) {
    test(`${endpoints} endpoints with max ${max ?? 100} give slices of ${expected.join('/')}`, () => {
      const store = new FakeSliceStore();
      const options = max === undefined ? {} : { maxEndpointsPerSlice: max };
      const plan = converge(store, makePods(endpoints), makeService(), options);
      assert.equal(plan.create.length, expected.length);
      assert.deepEqual(sizes(store.list()), expected);
      assert.equal(podNames(store.list()).length, endpoints);
    });
  }

  test('a Service without endpoints gets one placeholder slice with empty ports', () => {
    const store = new FakeSliceStore();
    const plan = converge(store, []);
    assert.equal(plan.create.length, 1);
    const [placeholder] = store.list();
    assert.deepEqual(placeholder!.ports, []);
    assert.deepEqual(placeholder!.endpoints, []);
    assert.equal(placeholder!.addressType, 'IPv4');
  });
});

describe('planEndpointSlices: slice contents', () => {
  test('metadata: labels, owner reference, generateName', () => {
    const service = makeService({
      labels: {
        team: 'blue',
        'kubernetes.io/service-name': 'spoofed',
        'endpointslice.kubernetes.io/managed-by': 'someone-else',
      },
    });
    const plan = planEndpointSlices(service, makePods(1), nodes, []);
    const [slice] = plan.create;
    assert.equal(slice!.metadata!.generateName, 'web-');
    assert.equal(slice!.metadata!.namespace, 'default');
    assert.deepEqual(slice!.metadata!.labels, {
      team: 'blue',
      'kubernetes.io/service-name': 'web',
      'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.portico.dev',
    });
    assert.deepEqual(slice!.metadata!.ownerReferences, [
      {
        apiVersion: 'v1',
        kind: 'Service',
        name: 'web',
        uid: 'svc-uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    assert.deepEqual(slice!.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
  });

  test('endpoint fields: addresses, conditions, nodeName, zone, targetRef', () => {
    const pod = makePod({ name: 'p1', ips: ['198.18.0.7'], node: 'node-b' });
    const [slice] = planEndpointSlices(makeService(), [pod], nodes, []).create;
    assert.deepEqual(slice!.endpoints, [
      {
        addresses: ['198.18.0.7'],
        conditions: { ready: true, serving: true, terminating: false },
        targetRef: { kind: 'Pod', namespace: 'default', name: 'p1', uid: 'uid-p1' },
        nodeName: 'node-b',
        zone: 'zone-b',
      },
    ]);
  });

  test('headless Service: headless label, hostname for pods whose subdomain is the Service', () => {
    const service = makeService({ clusterIP: 'None', name: 'db' });
    const pods = [
      makePod({ name: 'db-0', ips: ['198.18.0.1'], hostname: 'db-0', subdomain: 'db' }),
      makePod({ name: 'db-1', ips: ['198.18.0.2'], hostname: 'db-1', subdomain: 'other' }),
    ];
    const [slice] = planEndpointSlices(service, pods, nodes, []).create;
    assert.equal(slice!.metadata!.labels!['service.kubernetes.io/headless'], '');
    const byName = new Map(slice!.endpoints!.map((e) => [e.targetRef!.name, e]));
    assert.equal(byName.get('db-0')!.hostname, 'db-0');
    assert.equal(byName.get('db-1')!.hostname, undefined);
  });

  test('terminal pods, pods without IP and pods of other Services are left out; terminating pods stay', () => {
    const pods = [
      makePod({ name: 'ok', ips: ['198.18.0.1'] }),
      makePod({ name: 'done', ips: ['198.18.0.2'], phase: 'Succeeded' }),
      makePod({ name: 'failed', ips: ['198.18.0.3'], phase: 'Failed' }),
      makePod({ name: 'no-ip', ips: [] }),
      makePod({ name: 'other', ips: ['198.18.0.4'], labels: { app: 'other' } }),
      makePod({ name: 'elsewhere', ips: ['198.18.0.5'], namespace: 'kube-system' }),
      makePod({ name: 'stopping', ips: ['198.18.0.6'], deleting: true }),
    ];
    const plan = planEndpointSlices(makeService(), pods, nodes, []);
    assert.deepEqual(podNames(plan.create), ['ok', 'stopping']);
  });

  test('named targetPorts resolving differently per pod give two port groups', () => {
    const service = makeService({ ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'web' }] });
    const pods = [
      makePod({ name: 'old-1', ips: ['198.18.0.1'], containerPorts: [{ name: 'web', containerPort: 8080 }] }),
      makePod({ name: 'old-2', ips: ['198.18.0.2'], containerPorts: [{ name: 'web', containerPort: 8080 }] }),
      makePod({ name: 'new-1', ips: ['198.18.0.3'], containerPorts: [{ name: 'web', containerPort: 9090 }] }),
    ];
    const store = new FakeSliceStore();
    converge(store, pods, service);
    const byPort = new Map(store.list().map((slice) => [slice.ports![0]!.port, podNames([slice])]));
    assert.deepEqual(byPort.get(8080), ['old-1', 'old-2']);
    assert.deepEqual(byPort.get(9090), ['new-1']);
    assert.equal(store.list().length, 2);
  });

  test('a pod lacking a named port serves only the ports it has', () => {
    const service = makeService({
      ports: [
        { name: 'http', port: 80, protocol: 'TCP', targetPort: 'web' },
        { name: 'metrics', port: 9100, protocol: 'TCP', targetPort: 'metrics' },
      ],
    });
    const pods = [
      makePod({
        name: 'full',
        ips: ['198.18.0.1'],
        containerPorts: [
          { name: 'web', containerPort: 8080 },
          { name: 'metrics', containerPort: 9100 },
        ],
      }),
      makePod({
        name: 'web-only',
        ips: ['198.18.0.2'],
        containerPorts: [{ name: 'web', containerPort: 8080 }],
      }),
    ];
    const store = new FakeSliceStore();
    converge(store, pods, service);
    const groups = store
      .list()
      .map((slice) => ({ ports: slice.ports!.map((p) => p.name), pods: podNames([slice]) }));
    assert.deepEqual(
      groups.sort((a, b) => a.ports.length - b.ports.length),
      [
        { ports: ['http'], pods: ['web-only'] },
        { ports: ['http', 'metrics'], pods: ['full'] },
      ],
    );
  });

  test('dual-stack pods give one slice per address family', () => {
    const service = makeService({ ipFamilies: ['IPv4', 'IPv6'] });
    const pods = [
      makePod({ name: 'a', ips: ['198.18.0.1', '2001:DB8:0:0::1'] }),
      makePod({ name: 'b', ips: ['198.18.0.2', '2001:db8::2'] }),
    ];
    const store = new FakeSliceStore();
    converge(store, pods, service);
    const byType = new Map(store.list().map((slice) => [slice.addressType, slice]));
    assert.equal(store.list().length, 2);
    assert.deepEqual(
      byType.get('IPv4')!.endpoints!.map((e) => e.addresses),
      [['198.18.0.1'], ['198.18.0.2']],
    );
    // IPv6 addresses are written in canonical form.
    assert.deepEqual(
      byType.get('IPv6')!.endpoints!.map((e) => e.addresses),
      [['2001:db8::1'], ['2001:db8::2']],
    );
  });

  test('slices of an address family the Service no longer has are deleted', () => {
    const store = new FakeSliceStore();
    const pods = [makePod({ name: 'a', ips: ['198.18.0.1', '2001:db8::1'] })];
    converge(store, pods, makeService({ ipFamilies: ['IPv4', 'IPv6'] }));
    const plan = converge(store, pods, makeService({ ipFamilies: ['IPv4'] }));
    assert.deepEqual(
      plan.delete.map((s) => s.addressType),
      ['IPv6'],
    );
    assert.equal(plan.update.length + plan.create.length, 0);
  });

  test('a pod on an unknown node is left out and reported, unless not-ready addresses are published', () => {
    const pods = [makePod({ name: 'lost', ips: ['198.18.0.1'], node: 'node-z' }), ...makePods(1)];
    const plan = planEndpointSlices(makeService(), pods, nodes, []);
    assert.deepEqual(plan.podsOnMissingNodes, ['default/lost']);
    assert.deepEqual(podNames(plan.create), ['pod-0000']);
    const published = planEndpointSlices(makeService({ publishNotReadyAddresses: true }), pods, nodes, []);
    assert.deepEqual(published.podsOnMissingNodes, []);
    assert.deepEqual(podNames(published.create), ['lost', 'pod-0000']);
    assert.equal(
      published.create[0]!.endpoints!.find((e) => e.targetRef!.name === 'lost')!.zone,
      undefined,
      'no zone without a node',
    );
  });

  test('selector-less and ExternalName Services are left alone', () => {
    const existing = planEndpointSlices(makeService(), makePods(2), nodes, []).create;
    for (const service of [makeService({ selector: undefined }), makeService({ type: 'ExternalName' })]) {
      assert.ok(isEmpty(planEndpointSlices(service, makePods(2), nodes, existing)));
    }
  });

  test('trigger time is written on creates and updates in RFC 3339 with nanosecond precision', () => {
    const triggerTime = new Date('2026-11-24T12:00:00.120Z');
    const store = new FakeSliceStore();
    const plan = converge(store, makePods(1), makeService(), { triggerTime });
    assert.equal(
      plan.create[0]!.metadata!.annotations!['endpoints.kubernetes.io/last-change-trigger-time'],
      '2026-11-24T12:00:00.12Z',
    );
    const updated = planEndpointSlices(makeService(), makePods(2), nodes, store.list());
    assert.equal(
      updated.update[0]!.metadata!.annotations!['endpoints.kubernetes.io/last-change-trigger-time'],
      undefined,
    );
  });
});

describe('planEndpointSlices: conditions as pods change', () => {
  const readyPod = { name: 'p', ips: ['198.18.0.1'] };
  const cases: {
    name: string;
    from: Parameters<typeof makePod>[0];
    to: Parameters<typeof makePod>[0];
    publishNotReady?: boolean;
    want: object;
  }[] = [
    {
      name: 'ready',
      from: { ...readyPod, ready: false },
      to: readyPod,
      want: { ready: true, serving: true, terminating: false },
    },
    {
      name: 'unready',
      from: readyPod,
      to: { ...readyPod, ready: false },
      want: { ready: false, serving: false, terminating: false },
    },
    {
      name: 'terminating while still ready',
      from: readyPod,
      to: { ...readyPod, deleting: true },
      want: { ready: false, serving: true, terminating: true },
    },
    {
      name: 'terminating and unready',
      from: readyPod,
      to: { ...readyPod, deleting: true, ready: false },
      want: { ready: false, serving: false, terminating: true },
    },
    {
      name: 'terminating with publishNotReadyAddresses',
      from: readyPod,
      to: { ...readyPod, deleting: true, ready: false },
      publishNotReady: true,
      want: { ready: true, serving: false, terminating: true },
    },
  ];
  for (const { name, from, to, publishNotReady, want } of cases) {
    test(`pod turning ${name} is updated in place`, () => {
      const service = makeService({ publishNotReadyAddresses: publishNotReady ?? false });
      const store = new FakeSliceStore();
      converge(store, [makePod(from)], service);
      const before = store.list()[0]!.metadata!.name;
      const plan = converge(store, [makePod(to)], service);
      assert.deepEqual(store.list()[0]!.endpoints![0]!.conditions, want);
      assert.deepEqual(
        plan.update.map((s) => s.metadata!.name),
        [before],
      );
      assert.equal(plan.create.length + plan.delete.length, 0);
    });
  }
});

describe('planEndpointSlices: minimal churn', () => {
  test('flipping one pod of 250 rewrites only the slice holding it', () => {
    const store = new FakeSliceStore();
    const pods = makePods(250);
    converge(store, pods);
    const target = sliceOf(store, 'pod-0137');
    const untouched = store.list().filter((slice) => slice !== target);
    pods[137] = makePod({ name: 'pod-0137', ips: [ipv4At(137)], ready: false });
    const plan = converge(store, pods);
    assert.deepEqual(
      plan.update.map((s) => s.metadata!.name),
      [target.metadata!.name],
    );
    assert.equal(plan.create.length + plan.delete.length, 0);
    for (const slice of untouched) assert.equal(store.slices.get(slice.metadata!.name!), slice);
  });

  test('removing one pod updates one slice only', () => {
    const store = new FakeSliceStore();
    const pods = makePods(250);
    converge(store, pods);
    const plan = converge(
      store,
      pods.filter((p) => p.metadata!.name !== 'pod-0010'),
    );
    assert.equal(plan.update.length, 1);
    assert.equal(plan.create.length + plan.delete.length, 0);
    assert.deepEqual(sizes(store.list()), [100, 99, 50]);
  });

  test('scale down that empties a slice deletes it and leaves the others unwritten', () => {
    const store = new FakeSliceStore();
    const pods = makePods(250);
    converge(store, pods);
    const doomed = sliceOf(store, 'pod-0249');
    const survivors = new Set(podNames([doomed]));
    const plan = converge(
      store,
      pods.filter((p) => !survivors.has(p.metadata!.name!)),
    );
    assert.deepEqual(
      plan.delete.map((s) => s.metadata!.name),
      [doomed.metadata!.name],
    );
    assert.equal(plan.create.length + plan.update.length, 0);
    assert.deepEqual(sizes(store.list()), [100, 100]);
  });

  test('scale to zero keeps one slice as placeholder instead of delete plus create', () => {
    const store = new FakeSliceStore();
    converge(store, makePods(250));
    const names = new Set(store.list().map((s) => s.metadata!.name));
    const plan = converge(store, []);
    assert.equal(plan.create.length, 0);
    assert.equal(plan.update.length, 1);
    assert.equal(plan.delete.length, 2);
    assert.ok(names.has(plan.update[0]!.metadata!.name));
    assert.deepEqual(sizes(store.list()), [0]);
  });

  test('scale up from the placeholder reuses it', () => {
    const store = new FakeSliceStore();
    converge(store, []);
    const [placeholder] = store.list();
    const plan = converge(store, makePods(150));
    assert.equal(plan.create.length, 1);
    assert.deepEqual(
      plan.update.map((s) => s.metadata!.name),
      [placeholder!.metadata!.name],
    );
    assert.deepEqual(sizes(store.list()), [100, 50]);
  });

  test('new endpoints fill a slice with room before a new slice is created', () => {
    const store = new FakeSliceStore();
    converge(store, makePods(160));
    const plan = converge(store, makePods(190));
    assert.equal(plan.create.length, 0);
    assert.equal(plan.update.length, 1);
    assert.deepEqual(sizes(store.list()), [100, 90]);
  });

  test('new endpoints go into a slice that is being updated anyway', () => {
    const store = new FakeSliceStore();
    const pods = makePods(250);
    converge(store, pods);
    const changed = sliceOf(store, 'pod-0005');
    pods[5] = makePod({ name: 'pod-0005', ips: [ipv4At(5)], ready: false });
    const extra = makePod({ name: 'pod-9999', ips: ['198.19.0.1'] });
    const withRoom = pods.filter((p) => p.metadata!.name !== 'pod-0006');
    const plan = converge(store, [...withRoom, extra]);
    assert.deepEqual(
      plan.update.map((s) => s.metadata!.name),
      [changed.metadata!.name],
    );
    assert.equal(plan.create.length, 0);
    assert.ok(podNames([store.slices.get(changed.metadata!.name!)!]).includes('pod-9999'));
  });

  test('a changed Service label updates every slice, nothing else', () => {
    const store = new FakeSliceStore();
    converge(store, makePods(150));
    const plan = converge(store, makePods(150), makeService({ labels: { tier: 'front' } }));
    assert.equal(plan.update.length, 2);
    for (const slice of store.list()) assert.equal(slice.metadata!.labels!.tier, 'front');
  });

  test('slices managed by another controller are never touched', () => {
    const foreign: V1EndpointSlice = {
      addressType: 'IPv4',
      metadata: {
        name: 'web-foreign',
        namespace: 'default',
        labels: {
          'kubernetes.io/service-name': 'web',
          'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
        },
        ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'svc-uid-1' }],
      },
      endpoints: [],
      ports: [],
    };
    const plan = planEndpointSlices(makeService(), makePods(3), nodes, [foreign]);
    assert.equal(plan.create.length, 1);
    assert.equal(plan.update.length + plan.delete.length, 0);
  });

  test('slices left by an earlier Service of the same name are replaced, not adopted', () => {
    const store = new FakeSliceStore();
    converge(store, makePods(3), makeService({ uid: 'old-uid' }));
    const [old] = store.list();
    const plan = converge(store, makePods(3), makeService({ uid: 'new-uid' }));
    assert.equal(plan.create.length, 1);
    assert.deepEqual(
      plan.delete.map((s) => s.metadata!.name),
      [old!.metadata!.name],
    );
    assert.equal(store.list()[0]!.metadata!.ownerReferences![0]!.uid, 'new-uid');
  });

  test('no slices are created while the Service is being deleted', () => {
    const plan = planEndpointSlices(makeService({ deleting: true }), makePods(3), nodes, []);
    assert.equal(plan.create.length, 0);
  });

  test('the input slices are not modified', () => {
    const store = new FakeSliceStore();
    converge(store, makePods(120));
    const before = JSON.stringify(store.list());
    planEndpointSlices(
      makeService({ trafficDistribution: 'PreferClose' }),
      makePods(30),
      nodes,
      store.list(),
    );
    assert.equal(JSON.stringify(store.list()), before);
  });
});

describe('planEndpointSlices: traffic distribution hints', () => {
  test('PreferClose hints every ready endpoint for its own zone', () => {
    const store = new FakeSliceStore();
    const pods = [
      ...makePods(3, ['node-a', 'node-b', 'node-c']),
      makePod({ name: 'slow', ips: ['198.18.9.9'], ready: false }),
    ];
    converge(store, pods, makeService({ trafficDistribution: 'PreferClose' }));
    const hints = Object.fromEntries(store.list()[0]!.endpoints!.map((e) => [e.targetRef!.name, e.hints]));
    assert.deepEqual(hints, {
      'pod-0000': { forZones: [{ name: 'zone-a' }] },
      'pod-0001': { forZones: [{ name: 'zone-b' }] },
      'pod-0002': { forZones: [{ name: 'zone-c' }] },
      slow: undefined,
    });
  });

  test('PreferSameNode adds node hints', () => {
    const plan = planEndpointSlices(
      makeService({ trafficDistribution: 'PreferSameNode' }),
      makePods(1),
      nodes,
      [],
    );
    assert.deepEqual(plan.create[0]!.endpoints![0]!.hints, {
      forZones: [{ name: 'zone-a' }],
      forNodes: [{ name: 'node-a' }],
    });
  });

  test('an endpoint without a zone gets no zone hint; PreferSameNode still hints its node', () => {
    const pods = [makePod({ name: 'nowhere', ips: ['198.18.0.1'], node: 'node-z' })];
    const close = planEndpointSlices(
      makeService({ trafficDistribution: 'PreferClose', publishNotReadyAddresses: true }),
      pods,
      nodes,
      [],
    );
    assert.equal(close.create[0]!.endpoints![0]!.hints, undefined);
    const sameNode = planEndpointSlices(
      makeService({ trafficDistribution: 'PreferSameNode', publishNotReadyAddresses: true }),
      pods,
      nodes,
      [],
    );
    assert.deepEqual(sameNode.create[0]!.endpoints![0]!.hints, { forNodes: [{ name: 'node-z' }] });
  });

  test('turning hints on or off rewrites the unchanged slices once', () => {
    const store = new FakeSliceStore();
    converge(store, makePods(150, ['node-a', 'node-b']));
    const on = converge(
      store,
      makePods(150, ['node-a', 'node-b']),
      makeService({ trafficDistribution: 'PreferClose' }),
    );
    assert.equal(on.update.length, 2);
    assert.ok(store.list().every((s) => s.endpoints!.every((e) => e.hints?.forZones?.[0]?.name === e.zone)));
    const off = converge(store, makePods(150, ['node-a', 'node-b']));
    assert.equal(off.update.length, 2);
    assert.ok(store.list().every((s) => s.endpoints!.every((e) => e.hints === undefined)));
  });

  test('topology-mode Auto wins over trafficDistribution: nodes without allocatable CPU give no hints', () => {
    const service = makeService({
      trafficDistribution: 'PreferClose',
      annotations: { 'service.kubernetes.io/topology-mode': 'Auto' },
    });
    const plan = planEndpointSlices(service, makePods(2), nodes, []);
    assert.ok(plan.create[0]!.endpoints!.every((e) => e.hints === undefined));
    assert.deepEqual(
      plan.events.map((event) => event.reason),
      ['TopologyAwareHintsDisabled'],
    );
  });
});

describe('planEndpointSlices: options', () => {
  test('max endpoints per slice is checked with kube-controller-manager wording', () => {
    assert.throws(
      () => validateMaxEndpointsPerSlice(0),
      /--max-endpoints-per-slice: Invalid value: 0: must not be less than 1/,
    );
    assert.throws(
      () => validateMaxEndpointsPerSlice(1001),
      /Invalid value: 1001: must not be more than 1000/,
    );
    assert.doesNotThrow(() => validateMaxEndpointsPerSlice(1000));
    assert.throws(
      () => planEndpointSlices(makeService(), [], nodes, [], { maxEndpointsPerSlice: 0 }),
      RangeError,
    );
  });

  test('generateName falls back to the bare name when the prefix is not a DNS subdomain', () => {
    assert.equal(endpointSlicePrefix('web'), 'web-');
    assert.equal(endpointSlicePrefix('Bad_Name'), 'Bad_Name');
  });
});

describe('planEndpointSlices: properties', () => {
  test('any sequence of pod sets converges: exact endpoints, slices within max, replan empty', () => {
    const podSet = fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { maxLength: 40 }).chain((ids) =>
      fc.tuple(
        fc.constant(ids),
        fc.array(
          fc.record({
            ready: fc.boolean(),
            deleting: fc.boolean(),
            node: fc.constantFrom('node-a', 'node-b'),
          }),
          {
            minLength: ids.length,
            maxLength: ids.length,
          },
        ),
      ),
    );
    fc.assert(
      fc.property(
        fc.array(podSet, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 12 }),
        fc.constantFrom(undefined, 'PreferClose'),
        (steps, max, trafficDistribution) => {
          const store = new FakeSliceStore();
          const service = makeService(trafficDistribution === undefined ? {} : { trafficDistribution });
          for (const [ids, states] of steps) {
            const pods = ids.map((id, i) => makePod({ name: `p${id}`, ips: [ipv4At(id)], ...states[i]! }));
            const plan = planEndpointSlices(service, pods, nodes, store.list(), {
              maxEndpointsPerSlice: max,
            });
            store.apply(plan);
            const again = planEndpointSlices(service, pods, nodes, store.list(), {
              maxEndpointsPerSlice: max,
            });
            assert.ok(isEmpty(again));
            const slices = store.list();
            assert.deepEqual(podNames(slices), ids.map((id) => `p${id}`).sort());
            assert.ok(slices.every((s) => (s.endpoints?.length ?? 0) <= max));
            assert.ok(slices.length >= 1);
            if (ids.length > 0) assert.ok(slices.every((s) => (s.endpoints?.length ?? 0) > 0));
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
