import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import {
  announcedIps,
  EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS_LABEL,
  eligibleNodesForService,
  l2LeaseName,
  planAnnouncements,
  preferenceOrder,
} from './eligibility.ts';
import { targetsForNode } from './l2-announcement.ts';

function node(name: string, ready = true, labels: Record<string, string> = {}): V1Node {
  return {
    metadata: { name, labels },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

function service(
  name: string,
  ips: string[],
  extra: Partial<NonNullable<V1Service['spec']>> = {},
): V1Service {
  return {
    metadata: { namespace: 'default', name },
    spec: { type: 'LoadBalancer', ports: [{ port: 80 }], ...extra },
    status: { loadBalancer: { ingress: ips.map((ip) => ({ ip, ipMode: 'VIP' })) } },
  };
}

function slice(serviceName: string, endpoints: { node: string; ready?: boolean }[]): V1EndpointSlice {
  return {
    addressType: 'IPv4',
    metadata: {
      namespace: 'default',
      name: `${serviceName}-abc`,
      labels: { 'kubernetes.io/service-name': serviceName },
    },
    endpoints: endpoints.map((endpoint, index) => ({
      addresses: [`198.18.0.${index + 2}`],
      nodeName: endpoint.node,
      conditions: endpoint.ready === undefined ? {} : { ready: endpoint.ready },
    })),
  };
}

const nodes = [node('node-a'), node('node-b'), node('node-c')];

describe('L2 eligibility', () => {
  test('Cluster policy: every ready node not excluded from external load balancers', () => {
    const all = [
      ...nodes,
      node('node-down', false),
      node('node-excluded', true, { [EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS_LABEL]: '' }),
    ];
    assert.deepEqual([...eligibleNodesForService(service('web', ['198.18.200.1']), [], all)].sort(), [
      'node-a',
      'node-b',
      'node-c',
    ]);
  });

  test('Local policy: only nodes with a ready local endpoint (unset ready counts as ready)', () => {
    const web = service('web', ['198.18.200.1'], { externalTrafficPolicy: 'Local' });
    const slices = [
      slice('web', [{ node: 'node-b' }, { node: 'node-c', ready: false }, { node: 'node-gone' }]),
    ];
    assert.deepEqual([...eligibleNodesForService(web, slices, nodes)], ['node-b']);
    const plan = planAnnouncements([web], slices, nodes);
    assert.deepEqual(plan, [{ ip: '198.18.200.1', services: ['default/web'], candidates: ['node-b'] }]);
    assert.deepEqual(targetsForNode(plan, 'node-a'), []);
    assert.deepEqual(targetsForNode(plan, 'node-b'), [{ ip: '198.18.200.1', rank: 0, preferred: [] }]);
  });

  test('Local policy without ready endpoints: nobody announces', () => {
    const web = service('web', ['198.18.200.1'], { externalTrafficPolicy: 'Local' });
    const plan = planAnnouncements([web], [slice('web', [{ node: 'node-a', ready: false }])], nodes);
    assert.deepEqual(plan[0]?.candidates, []);
  });

  test('only LoadBalancer Services of our class (or none) with VIP-mode IPs are announced', () => {
    assert.deepEqual(announcedIps(service('a', ['198.18.200.1'])), ['198.18.200.1']);
    assert.deepEqual(
      announcedIps(service('b', ['198.18.200.2'], { loadBalancerClass: 'example.com/other' })),
      [],
    );
    assert.deepEqual(announcedIps(service('c', ['198.18.200.3'], { type: 'ClusterIP' })), []);
    const proxied = service('d', []);
    proxied.status = { loadBalancer: { ingress: [{ ip: '198.18.200.4', ipMode: 'Proxy' }] } };
    assert.deepEqual(announcedIps(proxied), []);
  });

  test('a shared IP is one announcement, eligible where every sharing Service is', () => {
    const dnsTcp = service('dns-tcp', ['198.18.200.53'], { externalTrafficPolicy: 'Local' });
    const dnsUdp = service('dns-udp', ['198.18.200.53'], { externalTrafficPolicy: 'Local' });
    const slices = [
      slice('dns-tcp', [{ node: 'node-a' }, { node: 'node-b' }]),
      slice('dns-udp', [{ node: 'node-b' }, { node: 'node-c' }]),
    ];
    const plan = planAnnouncements([dnsTcp, dnsUdp], slices, nodes);
    assert.equal(plan.length, 1);
    assert.deepEqual(plan[0]?.services, ['default/dns-tcp', 'default/dns-udp']);
    assert.deepEqual(plan[0]?.candidates, ['node-b']);
  });

  test('the preference order is deterministic and independent of input order', () => {
    const order = preferenceOrder(['node-a', 'node-b', 'node-c'], '198.18.200.7');
    assert.deepEqual(preferenceOrder(['node-c', 'node-a', 'node-b'], '198.18.200.7'), order);
    assert.deepEqual([...order].sort(), ['node-a', 'node-b', 'node-c']);
  });

  test('first choices spread roughly evenly over nodes across many IPs', () => {
    const names = ['node-0', 'node-1', 'node-2', 'node-3', 'node-4'];
    const firstChoices = new Map<string, number>();
    const total = 2_000;
    for (let i = 0; i < total; i++) {
      const ip = `198.18.${200 + Math.floor(i / 250)}.${(i % 250) + 1}`;
      const first = preferenceOrder(names, ip)[0]!;
      firstChoices.set(first, (firstChoices.get(first) ?? 0) + 1);
    }
    const expected = total / names.length;
    for (const name of names) {
      const count = firstChoices.get(name) ?? 0;
      assert.ok(Math.abs(count - expected) < expected * 0.2, `${name} is first for ${count} of ${total} IPs`);
    }
  });

  test('lease names are valid object names for IPv4 and IPv6', () => {
    for (const ip of ['198.18.200.1', '2001:db8::1']) {
      assert.match(l2LeaseName(ip), /^portico-l2-[0-9a-f]{16}$/);
    }
    assert.notEqual(l2LeaseName('198.18.200.1'), l2LeaseName('198.18.200.2'));
  });
});
