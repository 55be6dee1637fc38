import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Service } from '@kubernetes/client-node';
import {
  desiredIngress,
  finalizersWith,
  handlesService,
  ingressMatches,
  loadBalancerRequestOf,
  type PoolCondition,
  poolStatusMatches,
  poolStatusOf,
  serviceConditionsFor,
} from './plan.ts';

function service(spec: V1Service['spec'], annotations?: Record<string, string>): V1Service {
  return { metadata: { name: 'web', namespace: 'shop', annotations, labels: { app: 'web' } }, spec };
}

describe('handlesService', () => {
  const cases: [string, V1Service['spec'], boolean][] = [
    ['LoadBalancer without a class', { type: 'LoadBalancer' }, true],
    [
      "LoadBalancer with Portico's class",
      { type: 'LoadBalancer', loadBalancerClass: 'portico.dev/lb' },
      true,
    ],
    ['LoadBalancer with another class', { type: 'LoadBalancer', loadBalancerClass: 'example.com/lb' }, false],
    ['NodePort', { type: 'NodePort' }, false],
    ['ClusterIP', { type: 'ClusterIP' }, false],
  ];
  for (const [name, spec, expected] of cases) {
    test(`${name}: ${expected ? 'handled' : 'ignored'}`, () => {
      assert.equal(handlesService(service(spec), 'portico.dev/lb'), expected);
    });
  }
});

describe('loadBalancerRequestOf', () => {
  test('the annotation wins over the deprecated spec.loadBalancerIP, and names its field', () => {
    const request = loadBalancerRequestOf(
      service(
        { type: 'LoadBalancer', loadBalancerIP: '198.18.200.9', ipFamilies: ['IPv4', 'IPv6'] },
        { 'portico.dev/load-balancer-ips': ' 198.18.200.5, fd00::5 ' },
      ),
      {},
    );
    assert.deepEqual(request.requestedIPs, ['198.18.200.5', 'fd00::5']);
    assert.equal(request.requestedIPsField, 'metadata.annotations[portico.dev/load-balancer-ips]');
    assert.deepEqual(request.families, ['IPv4', 'IPv6']);
  });

  test('spec.loadBalancerIP is still honoured', () => {
    const request = loadBalancerRequestOf(
      service({ type: 'LoadBalancer', loadBalancerIP: '198.18.200.9' }),
      {},
    );
    assert.deepEqual(request.requestedIPs, ['198.18.200.9']);
    assert.equal(request.requestedIPsField, 'spec.loadBalancerIP');
  });

  test('pool, sharing key, ports and namespace labels are carried over', () => {
    const request = loadBalancerRequestOf(
      service(
        { type: 'LoadBalancer', ports: [{ port: 53, protocol: 'UDP' }, { port: 53 }] },
        { 'portico.dev/ip-pool': 'gold', 'portico.dev/allow-shared-ip': 'dns' },
      ),
      { team: 'a' },
    );
    assert.equal(request.key, 'shop/web');
    assert.equal(request.poolName, 'gold');
    assert.equal(request.sharingKey, 'dns');
    assert.deepEqual(request.ports, [
      { protocol: 'UDP', port: 53 },
      { protocol: 'TCP', port: 53 },
    ]);
    assert.deepEqual(request.namespaceLabels, { team: 'a' });
  });

  test('the backend key is the sorted selector for externalTrafficPolicy Local and empty for Cluster', () => {
    const local = loadBalancerRequestOf(
      service({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', selector: { tier: 'fe', app: 'web' } }),
      {},
    );
    assert.equal(local.backendKey, 'app=web,tier=fe');
    const cluster = loadBalancerRequestOf(
      service({ type: 'LoadBalancer', externalTrafficPolicy: 'Cluster', selector: { app: 'web' } }),
      {},
    );
    assert.equal(cluster.backendKey, '');
  });

  test('without spec.ipFamilies the family follows the ClusterIP, IPv4 when there is none', () => {
    assert.deepEqual(
      loadBalancerRequestOf(service({ type: 'LoadBalancer', clusterIP: 'fd00::10' }), {}).families,
      ['IPv6'],
    );
    assert.deepEqual(loadBalancerRequestOf(service({ type: 'LoadBalancer' }), {}).families, ['IPv4']);
  });
});

describe('status helpers', () => {
  test('ingress is VIP mode and compares equal only when identical', () => {
    const desired = desiredIngress(['198.18.200.1']);
    assert.deepEqual(desired, [{ ip: '198.18.200.1', ipMode: 'VIP' }]);
    const current = service({ type: 'LoadBalancer' });
    assert.equal(ingressMatches(current, desired), false);
    current.status = { loadBalancer: { ingress: [{ ip: '198.18.200.1', ipMode: 'VIP' }] } };
    assert.equal(ingressMatches(current, desired), true);
    current.status = { loadBalancer: { ingress: [{ ip: '198.18.200.1', ipMode: 'Proxy' }] } };
    assert.equal(ingressMatches(current, desired), false);
  });

  test('finalizersWith adds once and removes only the cleanup finalizer', () => {
    const svc: V1Service = { metadata: { finalizers: ['example.com/keep'] } };
    assert.deepEqual(finalizersWith(svc, true), [
      'example.com/keep',
      'service.kubernetes.io/load-balancer-cleanup',
    ]);
    svc.metadata = { finalizers: ['service.kubernetes.io/load-balancer-cleanup', 'example.com/keep'] };
    assert.deepEqual(finalizersWith(svc, true), [
      'example.com/keep',
      'service.kubernetes.io/load-balancer-cleanup',
    ]);
    assert.deepEqual(finalizersWith(svc, false), ['example.com/keep']);
  });
});

describe('poolStatusOf', () => {
  const now = new Date('2026-11-24T13:00:00.123Z');
  const later = new Date('2026-11-24T14:00:00Z');
  const byType = (conditions: PoolCondition[]) => Object.fromEntries(conditions.map((c) => [c.type, c]));

  test('a usable pool with free addresses is Ready, not Overlapping, not Exhausted', () => {
    const status = poolStatusOf({
      usage: { capacity: 4n, allocated: 1 },
      problem: undefined,
      previous: [],
      generation: 2,
      now,
    });
    assert.equal(status.capacity, 4);
    assert.equal(status.allocated, 1);
    const conditions = byType(status.conditions);
    assert.equal(conditions['Ready']?.status, 'True');
    assert.equal(conditions['Overlapping']?.status, 'False');
    assert.equal(conditions['Exhausted']?.status, 'False');
    assert.equal(conditions['Ready']?.lastTransitionTime, '2026-11-24T13:00:00Z');
    assert.equal(conditions['Ready']?.observedGeneration, 2);
  });

  test('a full pool is Exhausted; transition times move only for conditions that changed', () => {
    const first = poolStatusOf({
      usage: { capacity: 2n, allocated: 1 },
      problem: undefined,
      previous: [],
      generation: 1,
      now,
    });
    const second = poolStatusOf({
      usage: { capacity: 2n, allocated: 2 },
      problem: undefined,
      previous: first.conditions,
      generation: 1,
      now: later,
    });
    const conditions = byType(second.conditions);
    assert.equal(conditions['Exhausted']?.status, 'True');
    assert.equal(conditions['Exhausted']?.lastTransitionTime, '2026-11-24T14:00:00Z');
    assert.equal(conditions['Ready']?.lastTransitionTime, '2026-11-24T13:00:00Z');
    assert.equal(poolStatusMatches(second, second), true);
    assert.equal(poolStatusMatches(first, second), false);
  });

  test('an overlapping pool is not Ready and says which pool it overlaps', () => {
    const message =
      'LoadBalancerIPPool "b" spec.addresses[0] 198.18.200.0/28 overlaps 198.18.200.0/24 of LoadBalancerIPPool "a"';
    const status = poolStatusOf({
      usage: { capacity: 0n, allocated: 0 },
      problem: { reason: 'Overlapping', message },
      previous: [],
      generation: 1,
      now,
    });
    const conditions = byType(status.conditions);
    assert.equal(conditions['Ready']?.status, 'False');
    assert.equal(conditions['Ready']?.reason, 'Overlapping');
    assert.equal(conditions['Overlapping']?.status, 'True');
    assert.equal(conditions['Overlapping']?.message, message);
    assert.equal(conditions['Exhausted']?.status, 'False');
  });
});

describe('serviceConditionsFor', () => {
  const now = new Date('2026-11-24T13:00:00Z');
  const other = {
    type: 'example.com/Healthy',
    status: 'True',
    reason: 'Fine',
    message: 'ok',
    lastTransitionTime: '2026-11-24T12:00:00Z',
  };

  test("an orphaned address adds a False condition and keeps other writers' conditions", () => {
    const svc = service({ type: 'LoadBalancer' });
    svc.status = { conditions: [other as never] };
    const conditions = serviceConditionsFor(svc, ['198.18.201.11'], now);
    assert.deepEqual(
      conditions?.map((c) => [c.type, c.status, c.reason]),
      [
        ['example.com/Healthy', 'True', 'Fine'],
        ['portico.dev/LoadBalancerIPInPool', 'False', 'IPNotInPool'],
      ],
    );
    assert.match(
      conditions?.[1]?.message ?? '',
      /keeps 198\.18\.201\.11 although no LoadBalancerIPPool holds it/,
    );
  });

  test('nothing to write when the stored condition already says so, or when there is none to remove', () => {
    const svc = service({ type: 'LoadBalancer' });
    assert.equal(serviceConditionsFor(svc, [], now), undefined);
    svc.status = { conditions: serviceConditionsFor(svc, ['198.18.201.11'], now) as never };
    assert.equal(serviceConditionsFor(svc, ['198.18.201.11'], now), undefined);
  });

  test('the condition is removed once the address is back in a pool', () => {
    const svc = service({ type: 'LoadBalancer' });
    svc.status = {
      conditions: [other as never, ...(serviceConditionsFor(svc, ['198.18.201.11'], now) as never[])],
    };
    assert.deepEqual(
      serviceConditionsFor(svc, [], now)?.map((c) => c.type),
      ['example.com/Healthy'],
    );
  });
});
