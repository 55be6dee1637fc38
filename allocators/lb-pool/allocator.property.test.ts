import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { LoadBalancerIPPool } from '../../api/loadbalancerippool.ts';
import { LoadBalancerIPAllocator, type LoadBalancerRequest } from './allocator.ts';

const pools: LoadBalancerIPPool[] = [
  {
    apiVersion: 'portico.dev/v1alpha1',
    kind: 'LoadBalancerIPPool',
    metadata: { name: 'p' },
    spec: { addresses: ['198.18.200.0/30'] },
  },
];

const serviceNames = ['a', 'b', 'c', 'd', 'e', 'f'];

const request = fc.record({
  name: fc.constantFrom(...serviceNames),
  sharingKey: fc.constantFrom(undefined, 'k1', 'k2'),
  port: fc.constantFrom(53, 80),
  protocol: fc.constantFrom('TCP', 'UDP'),
  requested: fc.constantFrom(undefined, '198.18.200.1', '198.18.200.3', '198.18.201.1'),
});

const step = fc.oneof(
  request.map((r) => ({ kind: 'assign' as const, ...r })),
  fc.constantFrom(...serviceNames).map((name) => ({ kind: 'release' as const, name })),
);

interface GeneratedService {
  name: string;
  sharingKey: string | undefined;
  port: number;
  protocol: string;
  requested: string | undefined;
}

function toRequest(r: GeneratedService): LoadBalancerRequest {
  return {
    key: `default/${r.name}`,
    families: ['IPv4'],
    requestedIPs: r.requested === undefined ? [] : [r.requested],
    requestedIPsField: 'metadata.annotations[portico.dev/load-balancer-ips]',
    poolName: undefined,
    sharingKey: r.sharingKey,
    backendKey: '',
    ports: [{ protocol: r.protocol, port: r.port }],
    serviceLabels: {},
    namespaceLabels: {},
  };
}

test('whatever the sequence, an address is shared only by compatible Services and assign is idempotent', () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
      const alloc = new LoadBalancerIPAllocator(pools);
      const live = new Map<string, LoadBalancerRequest>();
      for (const s of steps) {
        if (s.kind === 'release') {
          alloc.release(`default/${s.name}`);
          live.delete(`default/${s.name}`);
          continue;
        }
        const req = toRequest(s);
        const first = alloc.assign(req);
        if (first.ok) {
          live.set(req.key, req);
          const again = alloc.assign(req);
          assert.ok(again.ok);
          assert.deepEqual(again.ips, first.ips, 'assigning twice keeps the address');
        } else {
          live.delete(req.key);
          assert.equal(alloc.assigned(req.key), undefined);
        }
      }
      const byIP = new Map<string, LoadBalancerRequest[]>();
      for (const [key, req] of live) {
        const ips = alloc.assigned(key);
        assert.ok(ips !== undefined, `${key} should hold an address`);
        for (const ip of ips) byIP.set(ip, [...(byIP.get(ip) ?? []), req]);
      }
      for (const [ip, holders] of byIP) {
        assert.deepEqual(alloc.holdersOf(ip).sort(), holders.map((h) => h.key).sort());
        if (holders.length < 2) continue;
        const key = holders[0]?.sharingKey;
        assert.ok(
          key !== undefined && holders.every((h) => h.sharingKey === key),
          `${ip} shared without one key`,
        );
        const ports = holders.flatMap((h) => h.ports.map((p) => `${p.protocol}/${p.port}`));
        assert.equal(new Set(ports).size, ports.length, `${ip} shared by Services with a common port`);
      }
      assert.equal(alloc.usage().get('p')?.allocated, byIP.size);
    }),
    { numRuns: 300 },
  );
});
