import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClusterIPRange, clusterIPStaticBandSize, parseServiceClusterIPRanges } from './cluster-ip-range.ts';
import { InvalidRangeError } from './errors.ts';

describe('ClusterIPRange sizes, reserved addresses and bands (upstream vectors)', () => {
  const cases: Array<{
    cidr: string;
    spec: string;
    size: number;
    staticBand: number;
    first?: string;
    last?: string;
    lastStatic?: string;
    outside?: string[];
  }> = [
    {
      cidr: '10.96.0.0/12',
      spec: '10.96.0.0/12',
      size: 1048574,
      staticBand: 256,
      first: '10.96.0.1',
      last: '10.111.255.254',
      lastStatic: '10.96.1.0',
      outside: ['10.96.0.0', '10.111.255.255', '10.112.0.0'],
    },
    {
      cidr: '10.0.0.0/24',
      spec: '10.0.0.0/24',
      size: 254,
      staticBand: 16,
      first: '10.0.0.1',
      last: '10.0.0.254',
      lastStatic: '10.0.0.16',
      outside: ['10.0.0.0', '10.0.0.255'],
    },
    { cidr: '10.0.0.0/16', spec: '10.0.0.0/16', size: 65534, staticBand: 256, lastStatic: '10.0.1.0' },
    { cidr: '10.0.0.0/20', spec: '10.0.0.0/20', size: 4094, staticBand: 256 },
    { cidr: '10.0.0.0/27', spec: '10.0.0.0/27', size: 30, staticBand: 16, last: '10.0.0.30' },
    {
      cidr: '10.0.0.0/28',
      spec: '10.0.0.0/28',
      size: 14,
      staticBand: 0,
      first: '10.0.0.1',
      last: '10.0.0.14',
    },
    { cidr: '10.0.0.0/30', spec: '10.0.0.0/30', size: 2, staticBand: 0, first: '10.0.0.1', last: '10.0.0.2' },
    { cidr: '10.0.0.0/31', spec: '10.0.0.0/31', size: 0, staticBand: 0, outside: ['10.0.0.0', '10.0.0.1'] },
    { cidr: '10.0.0.7/32', spec: '10.0.0.7/32', size: 0, staticBand: 0, outside: ['10.0.0.7'] },
    {
      cidr: '10.96.3.4/12',
      spec: '10.96.0.0/12',
      size: 1048574,
      staticBand: 256,
      first: '10.96.0.1',
    },
    {
      cidr: 'fd00:10:96::/108',
      spec: 'fd00:10:96::/108',
      size: 65535,
      staticBand: 256,
      first: 'fd00:10:96::1',
      last: 'fd00:10:96::ffff',
      lastStatic: 'fd00:10:96::100',
      outside: ['fd00:10:96::', 'fd00:10:96::1:0', 'fd00:10:96::f:ffff', '10.0.0.1'],
    },
    {
      cidr: '2001:db8::/112',
      spec: '2001:db8::/112',
      size: 65535,
      staticBand: 256,
      last: '2001:db8::ffff',
    },
    {
      cidr: '2001:DB8::/120',
      spec: '2001:db8::/120',
      size: 255,
      staticBand: 16,
      first: '2001:db8::1',
      last: '2001:db8::ff',
      lastStatic: '2001:db8::10',
    },
    { cidr: '2001:db8::/124', spec: '2001:db8::/124', size: 15, staticBand: 0, last: '2001:db8::f' },
    { cidr: '2001:db8::/127', spec: '2001:db8::/127', size: 1, staticBand: 0, first: '2001:db8::1' },
    { cidr: '2001:db8::1/128', spec: '2001:db8::1/128', size: 0, staticBand: 0 },
  ];
  for (const c of cases) {
    test(`${c.cidr}: ${c.size} allocatable, static band ${c.staticBand}`, () => {
      const range = new ClusterIPRange(c.cidr);
      assert.equal(range.spec, c.spec);
      assert.equal(range.size, c.size);
      assert.equal(range.staticBandSize, c.staticBand);
      if (c.first !== undefined) {
        assert.equal(range.valueAt(0), c.first);
        assert.equal(range.offsetOf(c.first), 0);
      }
      if (c.last !== undefined) {
        assert.equal(range.valueAt(c.size - 1), c.last);
        assert.equal(range.offsetOf(c.last), c.size - 1);
      }
      if (c.lastStatic !== undefined) assert.equal(range.valueAt(c.staticBand - 1), c.lastStatic);
      for (const ip of c.outside ?? [])
        assert.equal(range.contains(ip), false, `${ip} must not be allocatable`);
    });
  }

  test('the static band is computed from the full CIDR size', () => {
    assert.equal(clusterIPStaticBandSize(16n), 0);
    assert.equal(clusterIPStaticBandSize(17n), 16);
    assert.equal(clusterIPStaticBandSize(32n), 16);
    assert.equal(clusterIPStaticBandSize(512n), 32);
    assert.equal(clusterIPStaticBandSize(4096n), 256);
    assert.equal(clusterIPStaticBandSize(1n << 64n), 256);
  });

  test('offsets and addresses map both ways', () => {
    const range = new ClusterIPRange('10.96.0.0/12');
    assert.equal(range.valueAt(255), '10.96.1.0');
    assert.equal(range.offsetOf('10.96.1.0'), 255);
    assert.equal(range.offsetOf('10.100.0.10'), (4 << 16) + 9);
    assert.equal(range.offsetOf('010.96.0.1'), undefined, 'leading zeros are not an address');
    assert.throws(() => range.valueAt(range.size), RangeError);
  });

  test('not-in-range message names the range as upstream does', () => {
    assert.equal(
      new ClusterIPRange('10.0.0.0/24').notInRangeMessage('10.0.1.5'),
      'the provided IP (10.0.1.5) is not in the valid range. The range of valid IPs is 10.0.0.0/24',
    );
  });
});

describe('ClusterIPRange configuration errors', () => {
  const invalid: Array<[string, string]> = [
    [
      '10.0.0.0/11',
      'specified --service-cluster-ip-range is too large; for 32-bit addresses, the mask must be >= 12',
    ],
    [
      '10.0.0.0/8',
      'specified --service-cluster-ip-range is too large; for 32-bit addresses, the mask must be >= 12',
    ],
    [
      'fd00::/107',
      'specified --service-cluster-ip-range is too large; for 128-bit addresses, the mask must be >= 108',
    ],
    [
      'fd00::/64',
      'specified --service-cluster-ip-range is too large; for 128-bit addresses, the mask must be >= 108',
    ],
    [
      '10.0.0.0',
      '--service-cluster-ip-range: Invalid value: "10.0.0.0": must be a valid CIDR (e.g. 10.96.0.0/12)',
    ],
    [
      '10.0.0.0/33',
      '--service-cluster-ip-range: Invalid value: "10.0.0.0/33": must be a valid CIDR (e.g. 10.96.0.0/12)',
    ],
    [
      '10.0.0.0/024',
      '--service-cluster-ip-range: Invalid value: "10.0.0.0/024": must be a valid CIDR (e.g. 10.96.0.0/12)',
    ],
    [
      '10.0.0.256/24',
      '--service-cluster-ip-range: Invalid value: "10.0.0.256/24": must be a valid CIDR (e.g. 10.96.0.0/12)',
    ],
    [
      'fd00::/129',
      '--service-cluster-ip-range: Invalid value: "fd00::/129": must be a valid CIDR (e.g. 10.96.0.0/12)',
    ],
  ];
  for (const [cidr, message] of invalid) {
    test(`rejects ${cidr}`, () => {
      assert.throws(
        () => new ClusterIPRange(cidr),
        (error: unknown) => {
          assert.ok(error instanceof InvalidRangeError);
          assert.equal(error.message, message);
          return true;
        },
      );
    });
  }

  test('dual-stack flag: one CIDR per family, at most two', () => {
    assert.deepEqual(
      parseServiceClusterIPRanges('10.96.0.0/12,fd00::/108').map((range) => range.kind),
      ['IPv4', 'IPv6'],
    );
    assert.throws(
      () => parseServiceClusterIPRanges('10.96.0.0/12,10.200.0.0/16'),
      /\[0\] and \[1\] must be of different IP family/,
    );
    assert.throws(
      () => parseServiceClusterIPRanges('10.96.0.0/12,fd00::/108,10.1.0.0/16'),
      /must not contain more than two entries/,
    );
    assert.throws(() => parseServiceClusterIPRanges(''), /Required value/);
  });
});
