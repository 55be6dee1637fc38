import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice, V1Endpoints, V1Service } from '@kubernetes/client-node';
import { FakeSliceStore, makeService } from '../endpointslice/test-fixtures.ts';
import { type MirroredSlicePlan, planMirroredSlices, validateMaxEndpointsPerSubset } from './plan.ts';

/** Seed 003: a Service without selector and a hand-written Endpoints pointing at 192.0.2.42:9376. */
const manualService: V1Service = makeService({ name: 'my-service', selector: undefined, uid: 'svc-uid-9' });

function manualEndpoints(overrides: Partial<V1Endpoints> = {}): V1Endpoints {
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'my-service', namespace: 'default', uid: 'ep-uid-1' },
    subsets: [{ addresses: [{ ip: '192.0.2.42' }], ports: [{ port: 9376, protocol: 'TCP' }] }],
    ...overrides,
  };
}

function isEmpty(plan: MirroredSlicePlan): boolean {
  return plan.create.length === 0 && plan.update.length === 0 && plan.delete.length === 0;
}

function converge(
  store: FakeSliceStore,
  service: V1Service | undefined,
  endpoints: V1Endpoints | undefined,
  max?: number,
) {
  const options = max === undefined ? {} : { maxEndpointsPerSubset: max };
  const plan = planMirroredSlices(service, endpoints, store.list(), options);
  store.apply(plan);
  assert.ok(
    isEmpty(planMirroredSlices(service, endpoints, store.list(), options)),
    'second plan is not empty',
  );
  return plan;
}

function addresses(slices: readonly V1EndpointSlice[]): string[] {
  return slices
    .flatMap((s) => (s.endpoints ?? []).map((e) => `${e.addresses[0]}:${e.conditions?.ready}`))
    .sort();
}

describe('planMirroredSlices', () => {
  test('a selector-less Service with manual Endpoints gets one mirrored slice', () => {
    const store = new FakeSliceStore();
    const plan = converge(store, manualService, manualEndpoints());
    assert.equal(plan.create.length, 1);
    const [slice] = store.list();
    assert.equal(slice!.metadata!.generateName, 'my-service-');
    assert.equal(slice!.addressType, 'IPv4');
    assert.deepEqual(slice!.ports, [{ name: '', port: 9376, protocol: 'TCP' }]);
    assert.deepEqual(slice!.endpoints, [{ addresses: ['192.0.2.42'], conditions: { ready: true } }]);
    assert.deepEqual(slice!.metadata!.labels, {
      'kubernetes.io/service-name': 'my-service',
      'endpointslice.kubernetes.io/managed-by': 'endpointslicemirroring-controller.portico.dev',
    });
    assert.deepEqual(slice!.metadata!.ownerReferences, [
      {
        apiVersion: 'v1',
        kind: 'Endpoints',
        name: 'my-service',
        uid: 'ep-uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  test('labels are copied; annotations too, except the trigger time and kubectl apply record', () => {
    const store = new FakeSliceStore();
    const endpoints = manualEndpoints();
    endpoints.metadata!.labels = { team: 'blue', 'kubernetes.io/service-name': 'spoofed' };
    endpoints.metadata!.annotations = {
      note: 'kept',
      'endpoints.kubernetes.io/last-change-trigger-time': '2026-01-01T00:00:00Z',
      'kubectl.kubernetes.io/last-applied-configuration': '{}',
    };
    converge(store, manualService, endpoints);
    const [slice] = store.list();
    assert.equal(slice!.metadata!.labels!.team, 'blue');
    assert.equal(slice!.metadata!.labels!['kubernetes.io/service-name'], 'my-service');
    assert.deepEqual(slice!.metadata!.annotations, { note: 'kept' });
    endpoints.metadata!.annotations.note = 'changed';
    const plan = converge(store, manualService, endpoints);
    assert.equal(plan.update.length, 1);
  });

  test('ready and not-ready addresses, hostname, nodeName and targetRef are mirrored', () => {
    const endpoints = manualEndpoints({
      subsets: [
        {
          addresses: [{ ip: '192.0.2.1', hostname: 'one', nodeName: 'node-a' }],
          notReadyAddresses: [
            { ip: '192.0.2.2', targetRef: { kind: 'Pod', name: 'two', namespace: 'default' } },
          ],
          ports: [{ name: 'http', port: 80, protocol: 'TCP', appProtocol: 'http' }],
        },
      ],
    });
    const [slice] = planMirroredSlices(manualService, endpoints, []).create;
    assert.deepEqual(slice!.endpoints, [
      { addresses: ['192.0.2.1'], conditions: { ready: true }, hostname: 'one', nodeName: 'node-a' },
      {
        addresses: ['192.0.2.2'],
        conditions: { ready: false },
        targetRef: { kind: 'Pod', name: 'two', namespace: 'default' },
      },
    ]);
    assert.deepEqual(slice!.ports, [{ name: 'http', port: 80, protocol: 'TCP', appProtocol: 'http' }]);
  });

  test('invalid IPs are skipped with an InvalidIPAddress warning', () => {
    const endpoints = manualEndpoints({
      subsets: [
        { addresses: [{ ip: '192.0.2.1' }, { ip: 'not-an-ip' }, { ip: '300.1.1.1' }], ports: [{ port: 80 }] },
      ],
    });
    const plan = planMirroredSlices(manualService, endpoints, []);
    assert.deepEqual(addresses(plan.create), ['192.0.2.1:true']);
    assert.deepEqual(plan.events, [
      {
        type: 'Warning',
        reason: 'InvalidIPAddress',
        message: 'Skipped 2 invalid IP addresses when mirroring to EndpointSlices',
      },
    ]);
  });

  test('at most maxEndpointsPerSubset addresses are mirrored per subset, ready first', () => {
    const ready = Array.from({ length: 5 }, (_, i) => ({ ip: `192.0.2.${i + 1}` }));
    const notReady = Array.from({ length: 5 }, (_, i) => ({ ip: `192.0.2.${i + 101}` }));
    const endpoints = manualEndpoints({
      subsets: [{ addresses: ready, notReadyAddresses: notReady, ports: [{ port: 80 }] }],
    });
    const store = new FakeSliceStore();
    const plan = converge(store, manualService, endpoints, 7);
    const mirrored = addresses(store.list());
    assert.equal(mirrored.filter((a) => a.endsWith(':true')).length, 5);
    assert.deepEqual(
      mirrored.filter((a) => a.endsWith(':false')),
      ['192.0.2.101:false', '192.0.2.102:false'],
    );
    assert.deepEqual(plan.events, [
      {
        type: 'Warning',
        reason: 'TooManyAddressesToMirror',
        message:
          'A max of 7 addresses can be mirrored to EndpointSlices per Endpoints subset. 3 addresses were skipped',
      },
    ]);
  });

  test('dual-stack Endpoints get one slice per family; a family that disappears is deleted', () => {
    const store = new FakeSliceStore();
    const both = manualEndpoints({
      subsets: [{ addresses: [{ ip: '192.0.2.1' }, { ip: '2001:DB8::1' }], ports: [{ port: 80 }] }],
    });
    converge(store, manualService, both);
    assert.deepEqual(
      store.list().map((s) => [s.addressType, s.endpoints![0]!.addresses[0]]),
      [
        ['IPv4', '192.0.2.1'],
        ['IPv6', '2001:db8::1'],
      ],
    );
    const plan = converge(store, manualService, manualEndpoints());
    assert.deepEqual(
      plan.delete.map((s) => s.addressType),
      ['IPv6'],
    );
    assert.equal(plan.update.length, 1);
  });

  test('a changed port set reuses the old slice instead of delete plus create', () => {
    const store = new FakeSliceStore();
    converge(store, manualService, manualEndpoints());
    const [before] = store.list();
    const plan = converge(
      store,
      manualService,
      manualEndpoints({
        subsets: [{ addresses: [{ ip: '192.0.2.42' }], ports: [{ port: 9377, protocol: 'TCP' }] }],
      }),
    );
    assert.equal(plan.create.length + plan.delete.length, 0);
    assert.deepEqual(
      plan.update.map((s) => s.metadata!.name),
      [before!.metadata!.name],
    );
    assert.equal(store.list()[0]!.ports![0]!.port, 9377);
  });

  test('duplicate slices for one port set are reduced to the first', () => {
    const store = new FakeSliceStore();
    converge(store, manualService, manualEndpoints());
    const [first] = store.list();
    store.slices.set('my-service-zzzzz', {
      ...structuredClone(first!),
      metadata: { ...first!.metadata, name: 'my-service-zzzzz' },
    });
    const plan = converge(store, manualService, manualEndpoints());
    assert.deepEqual(
      plan.delete.map((s) => s.metadata!.name),
      ['my-service-zzzzz'],
    );
    assert.equal(plan.update.length, 0);
  });

  test('mirrored slices are deleted when mirroring no longer applies', () => {
    const cases: [string, V1Service | undefined, V1Endpoints | undefined][] = [
      ['the Service gained a selector', makeService({ name: 'my-service' }), manualEndpoints()],
      ['the Service is gone', undefined, manualEndpoints()],
      ['the Endpoints are gone', manualService, undefined],
      [
        'the Endpoints opt out with skip-mirror',
        manualService,
        manualEndpoints({
          metadata: {
            name: 'my-service',
            namespace: 'default',
            labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' },
          },
        }),
      ],
      [
        'the Endpoints are a leader-election record',
        manualService,
        manualEndpoints({
          metadata: {
            name: 'my-service',
            namespace: 'default',
            annotations: { 'control-plane.alpha.kubernetes.io/leader': '{}' },
          },
        }),
      ],
    ];
    for (const [reason, service, endpoints] of cases) {
      const store = new FakeSliceStore();
      converge(store, manualService, manualEndpoints());
      const plan = converge(store, service, endpoints);
      assert.equal(plan.delete.length, 1, reason);
      assert.equal(store.list().length, 0, reason);
    }
  });

  test('slices managed by others are never touched', () => {
    const foreign: V1EndpointSlice = {
      addressType: 'IPv4',
      metadata: {
        name: 'my-service-x',
        namespace: 'default',
        labels: {
          'kubernetes.io/service-name': 'my-service',
          'endpointslice.kubernetes.io/managed-by': 'endpointslicemirroring-controller.k8s.io',
        },
      },
      endpoints: [{ addresses: ['192.0.2.42'] }],
      ports: [{ name: '', port: 9376, protocol: 'TCP' }],
    };
    const plan = planMirroredSlices(manualService, manualEndpoints(), [foreign]);
    assert.equal(plan.create.length, 1);
    assert.equal(plan.update.length + plan.delete.length, 0);
    assert.ok(isEmpty(planMirroredSlices(undefined, undefined, [foreign])));
  });

  test('max endpoints per subset is checked with kube-controller-manager wording', () => {
    assert.throws(
      () => validateMaxEndpointsPerSubset(0),
      /--mirroring-max-endpoints-per-subset: Invalid value: 0: must not be less than 1/,
    );
    assert.throws(() => validateMaxEndpointsPerSubset(1001), /must not be more than 1000/);
  });
});
