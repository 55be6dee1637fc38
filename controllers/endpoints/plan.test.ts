import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSubset, V1Endpoints } from '@kubernetes/client-node';
import { ipv4At, makePod, makePods, makeService } from '../endpointslice/test-fixtures.ts';
import { computeEndpoints, countAddresses, planEndpoints, repackSubsets, truncateSubsets } from './plan.ts';

function ips(subsets: readonly V1EndpointSubset[], field: 'addresses' | 'notReadyAddresses'): string[] {
  return subsets.flatMap((s) => (s[field] ?? []).map((a) => a.ip));
}

/** Applies a plan as the API server would, so the next plan sees what was written. */
function applyEndpoints(
  existing: V1Endpoints | undefined,
  plan: ReturnType<typeof planEndpoints>,
): V1Endpoints | undefined {
  if (plan.action === 'none') return existing;
  if (plan.action === 'delete') return undefined;
  const written = structuredClone(plan.object!);
  written.metadata!.resourceVersion = String(Number(existing?.metadata?.resourceVersion ?? '0') + 1);
  return written;
}

describe('computeEndpoints', () => {
  test('ready pods go to addresses, unready ones to notReadyAddresses', () => {
    const pods = [
      makePod({ name: 'a', ips: ['198.18.0.1'] }),
      makePod({ name: 'b', ips: ['198.18.0.2'], ready: false }),
    ];
    const subsets = computeEndpoints(makeService(), pods);
    assert.deepEqual(subsets, [
      {
        addresses: [
          {
            ip: '198.18.0.1',
            nodeName: 'node-a',
            targetRef: { kind: 'Pod', namespace: 'default', name: 'a', uid: 'uid-a' },
          },
        ],
        notReadyAddresses: [
          {
            ip: '198.18.0.2',
            nodeName: 'node-a',
            targetRef: { kind: 'Pod', namespace: 'default', name: 'b', uid: 'uid-b' },
          },
        ],
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      },
    ]);
  });

  test('terminating, terminal and IP-less pods are left out', () => {
    const pods = [
      makePod({ name: 'ok', ips: ['198.18.0.1'] }),
      makePod({ name: 'stopping', ips: ['198.18.0.2'], deleting: true }),
      makePod({ name: 'done', ips: ['198.18.0.3'], phase: 'Succeeded' }),
      makePod({ name: 'failed', ips: ['198.18.0.4'], phase: 'Failed' }),
      makePod({ name: 'pending', ips: [] }),
      makePod({ name: 'foreign', ips: ['198.18.0.5'], labels: { app: 'db' } }),
    ];
    const subsets = computeEndpoints(makeService(), pods);
    assert.deepEqual(ips(subsets, 'addresses'), ['198.18.0.1']);
    assert.deepEqual(ips(subsets, 'notReadyAddresses'), []);
  });

  test('publishNotReadyAddresses lists unready and terminating pods as ready addresses', () => {
    const pods = [
      makePod({ name: 'a', ips: ['198.18.0.1'], ready: false }),
      makePod({ name: 'b', ips: ['198.18.0.2'], deleting: true }),
    ];
    const subsets = computeEndpoints(makeService({ publishNotReadyAddresses: true }), pods);
    assert.deepEqual(ips(subsets, 'addresses'), ['198.18.0.1', '198.18.0.2']);
    assert.deepEqual(ips(subsets, 'notReadyAddresses'), []);
  });

  test('a pod lacking a named port is left out of that port only', () => {
    const service = makeService({
      ports: [
        { name: 'http', port: 80, protocol: 'TCP', targetPort: 'web' },
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns' },
      ],
    });
    const pods = [
      makePod({
        name: 'both',
        ips: ['198.18.0.1'],
        containerPorts: [
          { name: 'web', containerPort: 8080, protocol: 'TCP' },
          { name: 'dns', containerPort: 5353, protocol: 'UDP' },
        ],
      }),
      // Same name, wrong protocol: does not serve the UDP port.
      makePod({
        name: 'web-only',
        ips: ['198.18.0.2'],
        containerPorts: [
          { name: 'web', containerPort: 8080, protocol: 'TCP' },
          { name: 'dns', containerPort: 5353, protocol: 'TCP' },
        ],
      }),
    ];
    const subsets = computeEndpoints(service, pods);
    const summary = subsets.map((s) => ({
      ports: s.ports!.map((p) => `${p.name}:${p.port}/${p.protocol}`),
      ips: ips([s], 'addresses'),
    }));
    assert.deepEqual(summary, [
      { ports: ['dns:5353/UDP'], ips: ['198.18.0.1'] },
      { ports: ['http:8080/TCP'], ips: ['198.18.0.1', '198.18.0.2'] },
    ]);
  });

  test('named ports resolving to different numbers give separate subsets; sidecar ports count', () => {
    const service = makeService({ ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'web' }] });
    const sidecar = makePod({ name: 'sidecar', ips: ['198.18.0.3'] });
    sidecar.spec!.initContainers = [
      { name: 'proxy', restartPolicy: 'Always', ports: [{ name: 'web', containerPort: 15001 }] },
    ];
    const pods = [
      makePod({ name: 'a', ips: ['198.18.0.1'], containerPorts: [{ name: 'web', containerPort: 8080 }] }),
      makePod({ name: 'b', ips: ['198.18.0.2'], containerPorts: [{ name: 'web', containerPort: 9090 }] }),
      sidecar,
    ];
    const subsets = computeEndpoints(service, pods);
    assert.deepEqual(
      subsets.map((s) => [s.ports![0]!.port, ips([s], 'addresses')]),
      [
        [15001, ['198.18.0.3']],
        [8080, ['198.18.0.1']],
        [9090, ['198.18.0.2']],
      ],
    );
  });

  test('headless Service without ports: one portless subset; hostname under the subdomain rule', () => {
    const service = makeService({ name: 'db', clusterIP: 'None', ports: [] });
    const pods = [
      makePod({ name: 'db-0', ips: ['198.18.0.1'], hostname: 'db-0', subdomain: 'db' }),
      makePod({ name: 'db-1', ips: ['198.18.0.2'], hostname: 'db-1' }),
    ];
    const subsets = computeEndpoints(service, pods);
    assert.equal(subsets.length, 1);
    assert.equal(subsets[0]!.ports, undefined);
    assert.deepEqual(
      subsets[0]!.addresses!.map((a) => [a.ip, a.hostname]),
      [
        ['198.18.0.1', 'db-0'],
        ['198.18.0.2', undefined],
      ],
    );
    assert.deepEqual(
      computeEndpoints(makeService({ ports: [] }), pods),
      [],
      'a headful Service without ports has none',
    );
  });

  test('single-stack: the address of the Service first family is used', () => {
    const pods = [makePod({ name: 'a', ips: ['198.18.0.1', '2001:db8::1'] })];
    assert.deepEqual(
      ips(computeEndpoints(makeService({ ipFamilies: ['IPv6', 'IPv4'] }), pods), 'addresses'),
      ['2001:db8::1'],
    );
    assert.deepEqual(
      ips(computeEndpoints(makeService({ ipFamilies: ['IPv4', 'IPv6'] }), pods), 'addresses'),
      ['198.18.0.1'],
    );
    const v4Only = [makePod({ name: 'b', ips: ['198.18.0.2'] })];
    assert.deepEqual(computeEndpoints(makeService({ ipFamilies: ['IPv6'] }), v4Only), []);
  });

  test('canonical form: pod order does not matter', () => {
    const pods = makePods(20).map((p, i) =>
      i % 3 === 0 ? makePod({ name: p.metadata!.name!, ips: [ipv4At(i)], ready: false }) : p,
    );
    const forward = computeEndpoints(makeService(), pods);
    const backward = computeEndpoints(makeService(), [...pods].reverse());
    assert.deepEqual(forward, backward);
  });
});

describe('repackSubsets', () => {
  test('merges ports served by the same addresses and sorts', () => {
    const a = { ip: '198.18.0.2' };
    const b = { ip: '198.18.0.1' };
    const repacked = repackSubsets([
      { addresses: [a], ports: [{ name: 'y', port: 2 }] },
      { addresses: [b], ports: [{ name: 'x', port: 1 }] },
      { addresses: [b], ports: [{ name: 'y', port: 2 }] },
      { addresses: [a], ports: [{ name: 'x', port: 1 }] },
    ]);
    assert.deepEqual(repacked, [
      {
        addresses: [b, a],
        ports: [
          { name: 'x', port: 1 },
          { name: 'y', port: 2 },
        ],
      },
    ]);
  });

  test('an address both ready and not ready counts as ready', () => {
    const a = { ip: '198.18.0.1' };
    const repacked = repackSubsets([
      { notReadyAddresses: [a], ports: [{ port: 1 }] },
      { addresses: [a], ports: [{ port: 1 }] },
    ]);
    assert.deepEqual(repacked, [{ addresses: [a], ports: [{ port: 1 }] }]);
  });
});

describe('truncateSubsets', () => {
  test('1200 ready addresses are cut to 1000', () => {
    const { subsets, truncated } = truncateSubsets(computeEndpoints(makeService(), makePods(1200)));
    assert.ok(truncated);
    assert.equal(countAddresses(subsets), 1000);
  });

  test('900 ready and 300 not ready keep all ready and 100 not ready', () => {
    const pods = makePods(1200).map((p, i) =>
      i < 900 ? p : makePod({ name: p.metadata!.name!, ips: [ipv4At(i)], ready: false }),
    );
    const { subsets } = truncateSubsets(computeEndpoints(makeService(), pods));
    assert.equal(ips(subsets, 'addresses').length, 900);
    assert.equal(ips(subsets, 'notReadyAddresses').length, 100);
  });

  test('the budget is spread over subsets in proportion, rounded up, first ones kept', () => {
    const addresses = (n: number, base: number) =>
      Array.from({ length: n }, (_, i) => ({ ip: ipv4At(base + i) }));
    const { subsets } = truncateSubsets([
      { addresses: addresses(900, 0), ports: [{ port: 1 }] },
      { addresses: addresses(300, 1000), ports: [{ port: 2 }] },
      { notReadyAddresses: addresses(10, 2000), ports: [{ port: 3 }] },
    ]);
    // ceil(900/1200*1000) = 750, then min(ceil(300/1200*1000) = 250, 250 left) = 250.
    assert.deepEqual(
      subsets.map((s) => [s.addresses?.length ?? 0, s.notReadyAddresses?.length ?? 0]),
      [
        [750, 0],
        [250, 0],
        [0, 0],
      ],
    );
    assert.deepEqual(subsets[0]!.addresses![0], { ip: ipv4At(0) });
  });

  test('at most 1000 addresses are left as they are', () => {
    const subsets = computeEndpoints(makeService(), makePods(1000));
    assert.deepEqual(truncateSubsets(subsets), { subsets, truncated: false });
  });
});

describe('planEndpoints', () => {
  test('creates, then leaves unchanged state alone', () => {
    const service = makeService({ labels: { app: 'web' } });
    const plan = planEndpoints(service, makePods(4), undefined);
    assert.equal(plan.action, 'create');
    assert.deepEqual(plan.object!.metadata, {
      name: 'web',
      namespace: 'default',
      labels: { app: 'web' },
      annotations: {},
    });
    const written = applyEndpoints(undefined, plan);
    assert.equal(planEndpoints(service, [...makePods(4)].reverse(), written).action, 'none');
  });

  test('a pod turning unready moves to notReadyAddresses with one update', () => {
    const service = makeService();
    const pods = makePods(4);
    const written = applyEndpoints(undefined, planEndpoints(service, pods, undefined));
    pods[2] = makePod({ name: 'pod-0002', ips: [ipv4At(2)], ready: false });
    const plan = planEndpoints(service, pods, written);
    assert.equal(plan.action, 'update');
    assert.equal(plan.object!.metadata!.resourceVersion, '1');
    assert.deepEqual(ips(plan.object!.subsets!, 'notReadyAddresses'), [ipv4At(2)]);
    assert.equal(planEndpoints(service, pods, applyEndpoints(written, plan)).action, 'none');
  });

  test('over 1000 addresses: truncated with the annotation, written once, annotation removed when back under', () => {
    const service = makeService();
    const plan = planEndpoints(service, makePods(1200), undefined);
    assert.equal(countAddresses(plan.object!.subsets!), 1000);
    assert.equal(plan.object!.metadata!.annotations!['endpoints.kubernetes.io/over-capacity'], 'truncated');
    const written = applyEndpoints(undefined, plan);
    assert.equal(planEndpoints(service, makePods(1200), written).action, 'none');
    const shrunk = planEndpoints(service, makePods(999), written);
    assert.equal(shrunk.action, 'update');
    assert.equal(shrunk.object!.metadata!.annotations!['endpoints.kubernetes.io/over-capacity'], undefined);
  });

  test('trigger time annotation is set when given and removed when not, without causing writes alone', () => {
    const service = makeService();
    const triggerTime = new Date('2026-11-24T12:00:00Z');
    const plan = planEndpoints(service, makePods(1), undefined, { triggerTime });
    assert.equal(
      plan.object!.metadata!.annotations!['endpoints.kubernetes.io/last-change-trigger-time'],
      '2026-11-24T12:00:00Z',
    );
    const written = applyEndpoints(undefined, plan);
    assert.equal(planEndpoints(service, makePods(1), written).action, 'none');
    const next = planEndpoints(service, makePods(2), written);
    assert.equal(
      next.object!.metadata!.annotations!['endpoints.kubernetes.io/last-change-trigger-time'],
      undefined,
    );
  });

  test('headless Services get the headless label, and toggling it is written', () => {
    const headless = makeService({ clusterIP: 'None' });
    const written = applyEndpoints(undefined, planEndpoints(headless, makePods(1), undefined));
    assert.equal(written!.metadata!.labels!['service.kubernetes.io/headless'], '');
    const plan = planEndpoints(makeService(), makePods(1), written);
    assert.equal(plan.action, 'update');
    assert.equal(plan.object!.metadata!.labels!['service.kubernetes.io/headless'], undefined);
  });

  test('annotations written by others are kept', () => {
    const existing = applyEndpoints(undefined, planEndpoints(makeService(), makePods(1), undefined))!;
    existing.metadata!.annotations = { 'example.com/note': 'keep' };
    const plan = planEndpoints(makeService(), makePods(2), existing);
    assert.equal(plan.object!.metadata!.annotations!['example.com/note'], 'keep');
  });

  test('selector-less and ExternalName Services leave user Endpoints alone', () => {
    const userEndpoints: V1Endpoints = {
      metadata: { name: 'web', namespace: 'default' },
      subsets: [{ addresses: [{ ip: '192.0.2.42' }], ports: [{ port: 9376 }] }],
    };
    assert.deepEqual(planEndpoints(makeService({ selector: undefined }), makePods(3), userEndpoints), {
      action: 'none',
    });
    assert.deepEqual(planEndpoints(makeService({ selector: {} }), makePods(3), userEndpoints), {
      action: 'none',
    });
    assert.deepEqual(planEndpoints(makeService({ type: 'ExternalName' }), makePods(3), userEndpoints), {
      action: 'none',
    });
  });

  test('a deleted Service deletes its Endpoints, except leader-election records', () => {
    const existing = applyEndpoints(undefined, planEndpoints(makeService(), makePods(1), undefined))!;
    assert.deepEqual(planEndpoints(undefined, [], existing), { action: 'delete', object: existing });
    assert.deepEqual(planEndpoints(undefined, [], undefined), { action: 'none' });
    const lease = structuredClone(existing);
    lease.metadata!.annotations = { 'control-plane.alpha.kubernetes.io/leader': '{}' };
    assert.deepEqual(planEndpoints(undefined, [], lease), { action: 'none' });
  });

  test('targetRef resourceVersion differences do not cause writes', () => {
    const service = makeService();
    const written = applyEndpoints(undefined, planEndpoints(service, makePods(2), undefined))!;
    written.subsets![0]!.addresses![0]!.targetRef!.resourceVersion = '777';
    assert.equal(planEndpoints(service, makePods(2), written).action, 'none');
  });
});
