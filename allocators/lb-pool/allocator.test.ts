import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LoadBalancerIPPool, LoadBalancerIPPoolSpec } from '../../api/loadbalancerippool.ts';
import type { IPFamily } from '../ip.ts';
import {
  type AllocationFailureReason,
  LoadBalancerIPAllocator,
  type LoadBalancerRequest,
} from './allocator.ts';

function pool(name: string, spec: LoadBalancerIPPoolSpec, createdSecond = 0): LoadBalancerIPPool {
  return {
    apiVersion: 'portico.dev/v1alpha1',
    kind: 'LoadBalancerIPPool',
    metadata: { name, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, createdSecond)) },
    spec,
  };
}

function service(
  name: string,
  family: IPFamily,
  overrides: Partial<LoadBalancerRequest> = {},
): LoadBalancerRequest {
  return {
    key: `default/${name}`,
    families: [family],
    requestedIPs: [],
    requestedIPsField: 'metadata.annotations[portico.dev/load-balancer-ips]',
    poolName: undefined,
    sharingKey: undefined,
    backendKey: '',
    ports: [{ protocol: 'TCP', port: 80 }],
    serviceLabels: {},
    namespaceLabels: {},
    ...overrides,
  };
}

/** One row of a scenario: run against the same allocator, in order. */
interface Step {
  readonly name: string;
  readonly run: (alloc: LoadBalancerIPAllocator) => void;
}

function expectIPs(alloc: LoadBalancerIPAllocator, request: LoadBalancerRequest, ips: string[]) {
  const result = alloc.assign(request);
  assert.ok(result.ok, result.ok ? '' : result.message);
  assert.deepEqual(result.ips, ips);
  assert.deepEqual(alloc.assigned(request.key), ips);
}

function expectFailure(
  alloc: LoadBalancerIPAllocator,
  request: LoadBalancerRequest,
  reason: AllocationFailureReason,
  message: RegExp,
) {
  const result = alloc.assign(request);
  assert.equal(
    result.ok,
    false,
    `expected ${request.key} to fail, got ${result.ok ? result.ips.join(',') : ''}`,
  );
  if (result.ok) return;
  assert.equal(result.reason, reason, result.message);
  assert.match(result.message, message);
  assert.equal(
    alloc.assigned(request.key),
    undefined,
    `a failed assign leaves ${request.key} without addresses`,
  );
}

interface FamilyStory {
  readonly family: IPFamily;
  /** CIDR of a 4-address pool. */
  readonly small: string;
  /** Its addresses in order. */
  readonly ips: readonly [string, string, string, string];
  /** An address outside every pool. */
  readonly outside: string;
  /** A range of two addresses for a second pool. */
  readonly extraRange: string;
  readonly extraIPs: readonly [string, string];
}

const stories: FamilyStory[] = [
  {
    family: 'IPv4',
    small: '198.18.200.0/30',
    ips: ['198.18.200.0', '198.18.200.1', '198.18.200.2', '198.18.200.3'],
    outside: '198.18.201.9',
    extraRange: '198.18.202.10-198.18.202.11',
    extraIPs: ['198.18.202.10', '198.18.202.11'],
  },
  {
    family: 'IPv6',
    small: 'fd00:198:18::/126',
    ips: ['fd00:198:18::', 'fd00:198:18::1', 'fd00:198:18::2', 'fd00:198:18::3'],
    outside: 'fd00:198:19::9',
    extraRange: 'fd00:198:1a::10-fd00:198:1a::11',
    extraIPs: ['fd00:198:1a::10', 'fd00:198:1a::11'],
  },
];

for (const story of stories) {
  const { family, ips } = story;
  const svc = (name: string, overrides: Partial<LoadBalancerRequest> = {}) =>
    service(name, family, overrides);
  const dnsTCP = svc('dns-tcp', { sharingKey: 'dns', ports: [{ protocol: 'TCP', port: 53 }] });
  const dnsUDP = svc('dns-udp', { sharingKey: 'dns', ports: [{ protocol: 'UDP', port: 53 }] });
  const dnsTCP2 = svc('dns-tcp-2', { sharingKey: 'dns', ports: [{ protocol: 'TCP', port: 53 }] });

  describe(`LoadBalancerIPAllocator scenario (${family})`, () => {
    const alloc = new LoadBalancerIPAllocator([pool('small', { addresses: [story.small] })]);
    const steps: Step[] = [
      { name: 's1 gets the lowest address', run: (a) => expectIPs(a, svc('s1'), [ips[0]]) },
      { name: 'assigning s1 again changes nothing', run: (a) => expectIPs(a, svc('s1'), [ips[0]]) },
      {
        name: "s2 can't grab s1's IP",
        run: (a) =>
          expectFailure(
            a,
            svc('s2', { requestedIPs: [ips[0]] }),
            'IPTaken',
            new RegExp(`^requested IP ${ips[0]} is taken by default/s1$`),
          ),
      },
      {
        name: 's2 asks for the third address and gets it',
        run: (a) => expectIPs(a, svc('s2', { requestedIPs: [ips[2]] }), [ips[2]]),
      },
      { name: 's3 gets the lowest free address', run: (a) => expectIPs(a, svc('s3'), [ips[1]]) },
      { name: 's4 gets the last address', run: (a) => expectIPs(a, svc('s4'), [ips[3]]) },
      {
        name: 's5 stays pending: the pool is exhausted',
        run: (a) =>
          expectFailure(a, svc('s5'), 'PoolExhausted', /no available IPs in LoadBalancerIPPool "small"/),
      },
      {
        name: 's1 frees its IP',
        run: (a) => {
          assert.equal(a.release('default/s1'), true);
          assert.equal(a.assigned('default/s1'), undefined);
          assert.equal(a.release('default/s1'), false);
        },
      },
      { name: 's5 now gets the freed address', run: (a) => expectIPs(a, svc('s5'), [ips[0]]) },
      {
        name: 'an address outside every pool is refused',
        run: (a) =>
          expectFailure(
            a,
            svc('s6', { requestedIPs: [story.outside] }),
            'IPNotInPool',
            new RegExp(`requested IP ${story.outside} is not in any LoadBalancerIPPool`),
          ),
      },
      {
        name: 'a named pool that does not exist is reported by name',
        run: (a) =>
          expectFailure(a, svc('s6', { poolName: 'gold' }), 'PoolNotFound', /"gold".*does not exist/),
      },
      {
        name: 'releasing everything empties the pool',
        run: (a) => {
          for (const name of ['s2', 's3', 's4', 's5']) a.release(`default/${name}`);
          assert.equal(a.usage().get('small')?.allocated, 0);
        },
      },
      { name: 'TCP/53 with key "dns" gets the lowest address', run: (a) => expectIPs(a, dnsTCP, [ips[0]]) },
      { name: 's7 without a key takes the next address', run: (a) => expectIPs(a, svc('s7'), [ips[1]]) },
      {
        name: 'TCP/53 and UDP/53 with the same key share one IP',
        run: (a) => {
          expectIPs(a, dnsUDP, [ips[0]]);
          assert.deepEqual(a.holdersOf(ips[0]).sort(), ['default/dns-tcp', 'default/dns-udp']);
          assert.equal(a.usage().get('small')?.allocated, 2);
        },
      },
      {
        name: 'a third Service clashing on TCP/53 stays pending naming the clash',
        run: (a) =>
          expectFailure(
            a,
            { ...dnsTCP2, requestedIPs: [ips[0]] },
            'SharingClash',
            new RegExp(`requested IP ${ips[0]} is taken by default/dns-tcp, which already uses TCP/53 on it`),
          ),
      },
      {
        name: "s8 can't share with dns-tcp (no sharing key)",
        run: (a) =>
          expectFailure(
            a,
            svc('s8', { requestedIPs: [ips[0]], ports: [{ protocol: 'TCP', port: 8080 }] }),
            'IPTaken',
            /taken by default\/dns-(tcp|udp)$/,
          ),
      },
      {
        name: "s8 can't share with dns-tcp (different key)",
        run: (a) =>
          expectFailure(
            a,
            svc('s8', {
              requestedIPs: [ips[0]],
              sharingKey: 'web',
              ports: [{ protocol: 'TCP', port: 8080 }],
            }),
            'IPTaken',
            /whose sharing key "dns" differs from "web"/,
          ),
      },
      {
        name: "s8 can't share with dns-tcp (externalTrafficPolicy Local, different backend key)",
        run: (a) =>
          expectFailure(
            a,
            svc('s8', {
              requestedIPs: [ips[0]],
              sharingKey: 'dns',
              backendKey: 'app=dns',
              ports: [{ protocol: 'TCP', port: 8080 }],
            }),
            'SharingClash',
            /externalTrafficPolicy or selector differs/,
          ),
      },
      {
        name: 'in an exhausted pool a clashing Service is told which shared IP clashed',
        run: (a) => {
          expectIPs(a, svc('s9'), [ips[2]]);
          expectIPs(a, svc('s10'), [ips[3]]);
          expectFailure(
            a,
            dnsTCP2,
            'PoolExhausted',
            new RegExp(
              `IP ${ips[0]} shared under key "dns" is held by default/dns-tcp, which already uses TCP/53`,
            ),
          );
        },
      },
      {
        name: 'dns-tcp leaves; dns-udp keeps the IP alone',
        run: (a) => {
          a.release('default/dns-tcp');
          assert.deepEqual(a.holdersOf(ips[0]), ['default/dns-udp']);
          expectIPs(a, dnsTCP2, [ips[0]]);
        },
      },
      {
        name: 'a pool edit that drops addresses in use keeps them and reports them orphaned',
        run: (a) => {
          const orphans = a.setPools([pool('small', { addresses: [story.extraRange] })]);
          assert.deepEqual(
            orphans.map((o) => `${o.service}=${o.ip}`).sort(),
            [
              `default/dns-tcp-2=${ips[0]}`,
              `default/dns-udp=${ips[0]}`,
              `default/s10=${ips[3]}`,
              `default/s7=${ips[1]}`,
              `default/s9=${ips[2]}`,
            ].sort(),
          );
          const again = a.assign(svc('s9'));
          assert.ok(again.ok);
          assert.deepEqual(again.ips, [ips[2]]);
          assert.deepEqual(again.orphaned, [ips[2]]);
          assert.equal(a.usage().get('small')?.allocated, 0);
        },
      },
      {
        name: 'new Services get addresses of the edited pool',
        run: (a) => {
          expectIPs(a, svc('s11'), [story.extraIPs[0]]);
          assert.equal(a.usage().get('small')?.allocated, 1);
          assert.equal(a.usage().get('small')?.capacity, 2n);
        },
      },
    ];
    for (const step of steps) test(step.name, () => step.run(alloc));
  });
}

describe('LoadBalancerIPAllocator pool choice', () => {
  test('the highest-priority matching pool wins; selectors pin pools to Services and namespaces', () => {
    const alloc = new LoadBalancerIPAllocator([
      pool('low', { addresses: ['198.18.200.0/30'], priority: 5 }),
      pool('high', { addresses: ['198.18.201.0/30'], priority: 1 }),
      pool('gold', {
        addresses: ['198.18.202.0/30'],
        priority: 0,
        serviceSelector: { matchLabels: { tier: 'gold' } },
      }),
      pool('team', {
        addresses: ['198.18.203.0/30'],
        priority: 0,
        namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['a'] }] },
      }),
    ]);
    expectIPs(alloc, service('plain', 'IPv4'), ['198.18.201.0']);
    expectIPs(alloc, service('gold', 'IPv4', { serviceLabels: { tier: 'gold' } }), ['198.18.202.0']);
    expectIPs(alloc, service('team', 'IPv4', { namespaceLabels: { team: 'a' } }), ['198.18.203.0']);
  });

  test('autoAssign false pools serve only Services that ask for them', () => {
    const alloc = new LoadBalancerIPAllocator([
      pool('manual', { addresses: ['198.18.200.8/30'], autoAssign: false }),
    ]);
    expectFailure(
      alloc,
      service('a', 'IPv4'),
      'NoMatchingPool',
      /no LoadBalancerIPPool with autoAssign matches/,
    );
    expectIPs(alloc, service('b', 'IPv4', { poolName: 'manual' }), ['198.18.200.8']);
    expectIPs(alloc, service('c', 'IPv4', { requestedIPs: ['198.18.200.10'] }), ['198.18.200.10']);
  });

  test('avoidBuggyIPs skips .0 and .255 and refuses them when requested', () => {
    const alloc = new LoadBalancerIPAllocator([
      pool('p', { addresses: ['198.18.200.255-198.18.201.1'], avoidBuggyIPs: true }),
    ]);
    expectIPs(alloc, service('a', 'IPv4'), ['198.18.201.1']);
    expectFailure(
      alloc,
      service('b', 'IPv4', { requestedIPs: ['198.18.201.0'] }),
      'IPNotInPool',
      /ends in \.0 or \.255, which LoadBalancerIPPool "p" avoids/,
    );
    expectFailure(alloc, service('c', 'IPv4'), 'PoolExhausted', /no available IPs/);
  });

  test('a dual-stack Service gets one address per family from one pool', () => {
    const alloc = new LoadBalancerIPAllocator([
      pool('v4only', { addresses: ['198.18.200.0/30'] }),
      pool('dual', { addresses: ['198.18.201.0/30', 'fd00:198:18::/126'], priority: 1 }),
    ]);
    expectIPs(alloc, { ...service('ds', 'IPv6'), families: ['IPv6', 'IPv4'] }, [
      'fd00:198:18::',
      '198.18.201.0',
    ]);
    expectFailure(
      alloc,
      service('bad', 'IPv4', { requestedIPs: ['198.18.201.1', '198.18.201.2'] }),
      'InvalidRequest',
      /at most one address per IP family/,
    );
  });

  test('restore rebuilds state from status and refuses an address another Service already holds', () => {
    const alloc = new LoadBalancerIPAllocator([pool('p', { addresses: ['198.18.200.0/30'] })]);
    const restored = alloc.restore(service('a', 'IPv4'), ['198.18.200.2']);
    assert.ok(restored.ok);
    const dup = alloc.restore(service('b', 'IPv4'), ['198.18.200.2']);
    assert.equal(dup.ok, false);
    assert.match(dup.ok ? '' : dup.message, /taken by default\/a/);
    const outside = alloc.restore(service('c', 'IPv4'), ['198.18.250.1']);
    assert.ok(outside.ok);
    assert.deepEqual(outside.orphaned, ['198.18.250.1']);
    expectIPs(alloc, service('a', 'IPv4'), ['198.18.200.2']);
    expectIPs(alloc, service('c', 'IPv4'), ['198.18.250.1']);
  });

  test('a pool overlapping an older pool is unusable and the message names both pools', () => {
    const alloc = new LoadBalancerIPAllocator([
      pool('newer', { addresses: ['198.18.200.0/28'] }, 5),
      pool('older', { addresses: ['198.18.200.0/24'] }, 1),
    ]);
    const problem = alloc.pools.problems.get('newer');
    assert.equal(problem?.reason, 'Overlapping');
    assert.match(
      problem?.message ?? '',
      /"newer".*198\.18\.200\.0\/28 overlaps 198\.18\.200\.0\/24 of LoadBalancerIPPool "older"/,
    );
    expectFailure(
      alloc,
      service('a', 'IPv4', { poolName: 'newer' }),
      'NoMatchingPool',
      /"newer" cannot be used/,
    );
    assert.equal(alloc.usage().get('older')?.capacity, 256n);
    assert.equal(alloc.usage().get('newer')?.capacity, 0n);
  });

  test('a 2^64 IPv6 pool assigns without walking it', () => {
    const alloc = new LoadBalancerIPAllocator([pool('huge', { addresses: ['fd00:198:18::/64'] })]);
    for (let i = 0; i < 3; i++) alloc.assign(service(`s${i}`, 'IPv6'));
    expectIPs(alloc, service('s3', 'IPv6'), ['fd00:198:18::3']);
    assert.equal(alloc.usage().get('huge')?.capacity, 1n << 64n);
  });
});
