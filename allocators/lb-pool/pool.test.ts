import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LoadBalancerIPPool, LoadBalancerIPPoolSpec } from '../../api/loadbalancerippool.ts';
import {
  buildPoolSet,
  parseAddressEntry,
  parsePool,
  poolAddresses,
  rangeCapacity,
  saturatingNumber,
} from './pool.ts';
import { labelSelectorMatches } from './selector.ts';

function pool(name: string, spec: LoadBalancerIPPoolSpec): LoadBalancerIPPool {
  return { apiVersion: 'portico.dev/v1alpha1', kind: 'LoadBalancerIPPool', metadata: { name }, spec };
}

function errorsOf(spec: LoadBalancerIPPoolSpec): readonly string[] {
  const result = parsePool(pool('p', spec));
  assert.equal(result.ok, false, 'expected the pool to be rejected');
  return result.ok ? [] : result.errors;
}

describe('parseAddressEntry', () => {
  const accepted: [string, string, string, bigint][] = [
    ['198.18.200.0/24', 'IPv4', '198.18.200.0-198.18.200.255', 256n],
    ['198.18.200.10-198.18.200.20', 'IPv4', 'same', 11n],
    ['198.18.200.7/32', 'IPv4', 'single', 1n],
    ['fd00:198:18::/120', 'IPv6', 'v6 cidr', 256n],
    ['fd00:198:18::5-fd00:198:18::6', 'IPv6', 'v6 range', 2n],
  ];
  for (const [text, family, , size] of accepted) {
    test(`${text} is a ${family} block of ${size} addresses`, () => {
      const range = parseAddressEntry(text, 0);
      assert.notEqual(typeof range, 'string', String(range));
      if (typeof range === 'string') return;
      assert.equal(range.family, family);
      assert.equal(range.last - range.first + 1n, size);
    });
  }

  const rejected: [string, RegExp][] = [
    [
      '198.18.200.0/33',
      /spec\.addresses\[3\]: Invalid value: "198\.18\.200\.0\/33": the prefix length must be between 0 and 32 for IPv4/,
    ],
    [
      '198.18.200.5/24',
      /must be a network address with no bits set after the prefix \(198\.18\.200\.0\/24\)/,
    ],
    ['198.18.200.20-198.18.200.10', /the first address of a range must not be after the last/],
    ['198.18.200.1-fd00::1', /must be of the same IP family/],
    ['not-an-ip', /must be a CIDR \(198\.18\.200\.0\/24, fd00:10::\/120\) or a range first-last/],
    ['198.18.200.1', /must be a CIDR/],
  ];
  for (const [text, message] of rejected) {
    test(`${JSON.stringify(text)} is refused with a message naming the field and value`, () => {
      const result = parseAddressEntry(text, 3);
      assert.equal(typeof result, 'string');
      assert.match(String(result), message);
    });
  }
});

describe('parsePool', () => {
  test('defaults: autoAssign true, priority 0, no buggy-IP avoidance', () => {
    const result = parsePool(pool('p', { addresses: ['198.18.200.0/24'] }));
    assert.ok(result.ok);
    assert.equal(result.pool.autoAssign, true);
    assert.equal(result.pool.priority, 0);
    assert.equal(result.pool.capacity, 256n);
  });

  test('avoidBuggyIPs removes .0 and .255 from the capacity and from the walk', () => {
    const result = parsePool(
      pool('p', { addresses: ['198.18.200.0/23', 'fd00::/126'], avoidBuggyIPs: true }),
    );
    assert.ok(result.ok);
    assert.equal(result.pool.capacity, 512n - 4n + 4n);
    const v4 = [...poolAddresses(result.pool, 'IPv4')];
    assert.equal(v4.length, 508);
    assert.equal(
      v4.some((value) => (value & 0xffn) === 0n || (value & 0xffn) === 255n),
      false,
    );
  });

  test('rangeCapacity counts buggy addresses at range edges', () => {
    const range = parseAddressEntry('198.18.200.250-198.18.201.5', 0);
    assert.ok(typeof range !== 'string');
    assert.equal(rangeCapacity(range, false), 12n);
    assert.equal(rangeCapacity(range, true), 10n);
  });

  test('entries that overlap inside one pool are refused', () => {
    assert.match(
      errorsOf({ addresses: ['198.18.200.0/24', '198.18.200.128-198.18.200.130'] })[0] ?? '',
      /spec\.addresses\[1\]: Invalid value: "198\.18\.200\.128-198\.18\.200\.130": overlaps spec\.addresses\[0\] \(198\.18\.200\.0\/24\)/,
    );
  });

  test('every bad entry is reported, not only the first', () => {
    assert.equal(errorsOf({ addresses: ['x', '198.18.200.9-198.18.200.1'] }).length, 2);
  });

  test('an empty address list is refused', () => {
    assert.match(errorsOf({ addresses: [] })[0] ?? '', /spec\.addresses: Required value/);
  });

  test('capacity of a huge IPv6 pool saturates to a JSON-safe number', () => {
    const result = parsePool(pool('p', { addresses: ['fd00::/64'] }));
    assert.ok(result.ok);
    assert.equal(saturatingNumber(result.pool.capacity), Number.MAX_SAFE_INTEGER);
  });
});

describe('buildPoolSet', () => {
  test('an invalid pool is reported and unusable; valid pools stay usable', () => {
    const set = buildPoolSet([
      pool('bad', { addresses: ['198.18.200.9-198.18.200.1'] }),
      pool('good', { addresses: ['198.18.201.0/30'] }),
    ]);
    assert.deepEqual(
      set.usable.map((p) => p.name),
      ['good'],
    );
    assert.equal(set.problems.get('bad')?.reason, 'InvalidAddresses');
  });

  test('pools of different families never overlap', () => {
    const set = buildPoolSet([
      pool('a', { addresses: ['198.18.200.0/24'] }),
      pool('b', { addresses: ['fd00::/120'] }),
    ]);
    assert.equal(set.problems.size, 0);
  });

  test('of two overlapping pools without creation times, the first by name keeps its addresses', () => {
    const set = buildPoolSet([
      pool('b', { addresses: ['198.18.200.10-198.18.200.12'] }),
      pool('a', { addresses: ['198.18.200.0/28'] }),
    ]);
    assert.deepEqual(
      set.usable.map((p) => p.name),
      ['a'],
    );
    assert.equal(
      set.problems.get('b')?.message,
      'LoadBalancerIPPool "b" spec.addresses[0] 198.18.200.10-198.18.200.12 overlaps 198.18.200.0/28 of LoadBalancerIPPool "a"',
    );
  });
});

describe('labelSelectorMatches', () => {
  const labels = { app: 'web', tier: 'gold' };
  const cases: [string, Parameters<typeof labelSelectorMatches>[0], boolean][] = [
    ['absent selector matches everything', undefined, true],
    ['matchLabels hit', { matchLabels: { app: 'web' } }, true],
    ['matchLabels miss', { matchLabels: { app: 'db' } }, false],
    ['In hit', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['gold', 'silver'] }] }, true],
    ['NotIn hit', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['gold'] }] }, false],
    ['Exists', { matchExpressions: [{ key: 'app', operator: 'Exists' }] }, true],
    ['DoesNotExist', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, false],
    [
      'unknown operator fails closed',
      { matchExpressions: [{ key: 'app', operator: 'Gt', values: ['1'] }] },
      false,
    ],
  ];
  for (const [name, selector, expected] of cases) {
    test(name, () => assert.equal(labelSelectorMatches(selector, labels), expected));
  }
});
