import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatFieldError } from './field-errors.ts';
import {
  formatCIDR,
  formatIP,
  ipFamilyOf,
  isValidCIDR,
  isValidCIDRForLegacyField,
  isValidIP,
  isValidIPForLegacyField,
  isValidIPv4Address,
  isValidIPv6Address,
  parseCIDRSloppy,
  parseIPSloppy,
  validateNonSpecialIP,
} from './ip.ts';

describe('parseIPSloppy and formatIP', () => {
  const rows: [input: string, formatted: string | undefined][] = [
    ['10.96.0.10', '10.96.0.10'],
    ['010.096.000.010', '10.96.0.10'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['256.1.1.1', undefined],
    ['1.2.3', undefined],
    ['1.2.3.4.5', undefined],
    ['1.2.3.4 ', undefined],
    ['::', '::'],
    ['::1', '::1'],
    ['FD00:0:0:0:0:0:0:A', 'fd00::a'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8::ffff', '2001:db8::ffff'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1::2::3', undefined],
    ['1:2:3:4:5:6:7:8:9', undefined],
    ['1:2:3:4:5:6:7::8', undefined],
    [':1::', undefined],
    ['12345::', undefined],
    ['fe80::1%eth0', undefined],
    ['None', undefined],
    ['', undefined],
  ];
  for (const [input, formatted] of rows) {
    test(`${JSON.stringify(input)} → ${formatted ?? 'rejected'}`, () => {
      const ip = parseIPSloppy(input);
      assert.equal(ip === undefined ? undefined : formatIP(ip), formatted);
    });
  }

  test('IPv6 text matches the WHATWG serializer (RFC 5952 compression) for random addresses', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        fc.pre(!bytes.subarray(0, 12).every((byte, i) => byte === (i < 10 ? 0 : 0xff)));
        const ip = { bytes, isIPv4: false };
        const text = formatIP(ip);
        assert.equal(text, new URL(`http://[${text}]/`).hostname.slice(1, -1));
        assert.deepEqual(parseIPSloppy(text)?.bytes, bytes);
      }),
      { numRuns: 500 },
    );
  });

  test('families: IPv4-mapped IPv6 counts as IPv4, as in Kubernetes', () => {
    assert.equal(ipFamilyOf('10.0.0.1'), 'IPv4');
    assert.equal(ipFamilyOf('::ffff:10.0.0.1'), 'IPv4');
    assert.equal(ipFamilyOf('fd00::1'), 'IPv6');
    assert.equal(ipFamilyOf('x'), undefined);
  });
});

function messages(errors: ReturnType<typeof isValidIP>): string[] {
  return errors.map(formatFieldError);
}

describe('IP validation messages', () => {
  const f = 'spec.clusterIPs[0]';
  const rows: [name: string, errors: () => ReturnType<typeof isValidIP>, expected: string[]][] = [
    ['legacy accepts a plain address', () => isValidIPForLegacyField(f, '10.96.0.10'), []],
    ['legacy accepts uppercase IPv6', () => isValidIPForLegacyField(f, 'FD00::A'), []],
    [
      'legacy rejects garbage',
      () => isValidIPForLegacyField(f, '10.96.0.300'),
      [`${f}: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`],
    ],
    [
      'strict legacy rejects leading zeros',
      () => isValidIPForLegacyField(f, '10.96.0.010'),
      [`${f}: Invalid value: "10.96.0.010": must not have leading 0s`],
    ],
    ['non-strict legacy accepts leading zeros', () => isValidIPForLegacyField(f, '10.96.0.010', false), []],
    [
      'strict legacy rejects IPv4-mapped IPv6',
      () => isValidIPForLegacyField(f, '::ffff:10.0.0.1'),
      [`${f}: Invalid value: "::ffff:10.0.0.1": must not be an IPv4-mapped IPv6 address`],
    ],
    [
      'strict legacy rejects over-long IPv6 groups',
      () => isValidIPForLegacyField(f, '00001::1'),
      [`${f}: Invalid value: "00001::1": must not have leading 0s`],
    ],
    [
      'new fields want canonical form',
      () => isValidIP(f, 'FD00:0::A'),
      [`${f}: Invalid value: "FD00:0::A": must be in canonical form ("fd00::a")`],
    ],
    ['canonical IPv6 passes', () => isValidIP(f, 'fd00::a'), []],
    ['IPv4 in an IPv4 slice', () => isValidIPv4Address(f, '10.0.0.1'), []],
    [
      'IPv6 in an IPv4 slice',
      () => isValidIPv4Address(f, 'fd00::1'),
      [`${f}: Invalid value: "fd00::1": must be a valid IPv4 address`],
    ],
    [
      'IPv4 in an IPv6 slice',
      () => isValidIPv6Address(f, '10.0.0.1'),
      [`${f}: Invalid value: "10.0.0.1": must be a valid IPv6 address`],
    ],
  ];
  for (const [name, errors, expected] of rows)
    test(name, () => assert.deepEqual(messages(errors()), expected));
});

describe('CIDR parsing and validation', () => {
  const f = 'spec.LoadBalancerSourceRanges[0]';
  test('parses network and prefix', () => {
    const cidr = parseCIDRSloppy('10.96.0.1/12');
    assert.ok(cidr);
    assert.equal(formatCIDR(cidr), '10.96.0.0/12');
    assert.equal(cidr.prefixLength, 12);
    assert.equal(formatCIDR(parseCIDRSloppy('FD00:10:96::/108')!), 'fd00:10:96::/108');
    assert.equal(formatCIDR(parseCIDRSloppy('10.0.0.0/024')!), '10.0.0.0/24');
  });

  const rows: [name: string, errors: () => ReturnType<typeof isValidIP>, expected: string[]][] = [
    ['a subnet passes', () => isValidCIDRForLegacyField(f, '10.0.0.0/8'), []],
    ['/0 passes', () => isValidCIDRForLegacyField(f, '0.0.0.0/0'), []],
    ['IPv6 passes', () => isValidCIDRForLegacyField(f, '2001:db8::/64'), []],
    [
      'prefix too long',
      () => isValidCIDRForLegacyField(f, '10.0.0.0/33'),
      [`${f}: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`],
    ],
    [
      'no prefix',
      () => isValidCIDRForLegacyField(f, '10.0.0.0'),
      [`${f}: Invalid value: "10.0.0.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`],
    ],
    [
      'leading zeros in the address',
      () => isValidCIDRForLegacyField(f, '010.0.0.0/8'),
      [`${f}: Invalid value: "010.0.0.0/8": must not have leading 0s in IP or prefix length`],
    ],
    [
      'leading zeros in the prefix',
      () => isValidCIDRForLegacyField(f, '10.0.0.0/08'),
      [`${f}: Invalid value: "10.0.0.0/08": must not have leading 0s in IP or prefix length`],
    ],
    [
      'IPv4-mapped IPv6',
      () => isValidCIDRForLegacyField(f, '::ffff:10.0.0.0/104'),
      [`${f}: Invalid value: "::ffff:10.0.0.0/104": must not have an IPv4-mapped IPv6 address`],
    ],
    [
      'host bits set',
      () => isValidCIDRForLegacyField(f, '10.0.0.1/8'),
      [`${f}: Invalid value: "10.0.0.1/8": must not have bits set beyond the prefix length`],
    ],
    ['non-strict accepts host bits', () => isValidCIDRForLegacyField(f, '10.0.0.1/8', false), []],
    [
      'new fields want canonical form',
      () => isValidCIDR(f, '2001:DB8::/64'),
      [`${f}: Invalid value: "2001:DB8::/64": must be in canonical form ("2001:db8::/64")`],
    ],
  ];
  for (const [name, errors, expected] of rows)
    test(name, () => assert.deepEqual(messages(errors()), expected));
});

describe('validateNonSpecialIP', () => {
  const f = 'subsets[0].addresses[0].ip';
  const loopback = 'may not be in the loopback range (127.0.0.0/8, ::1/128)';
  const linkLocal = 'may not be in the link-local range (169.254.0.0/16, fe80::/10)';
  const multicast = 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)';
  const rows: [address: string, detail: string | undefined][] = [
    ['10.1.2.3', undefined],
    ['192.0.2.42', undefined],
    ['198.18.0.5', undefined],
    ['127.0.0.1', loopback],
    ['127.255.0.9', loopback],
    ['::1', loopback],
    ['169.254.169.254', linkLocal],
    ['fe80::1', linkLocal],
    ['febf::1', linkLocal],
    ['fec0::1', undefined],
    ['224.0.0.251', multicast],
    ['224.0.1.1', undefined],
    ['ff02::1', multicast],
    ['ff12::1', multicast],
    ['ff05::1', undefined],
    ['0.0.0.0', 'may not be unspecified (0.0.0.0)'],
    ['::', 'may not be unspecified (::)'],
    ['nonsense', 'must be a valid IP address'],
  ];
  for (const [address, detail] of rows) {
    test(`${address}: ${detail ?? 'allowed'}`, () => {
      const expected = detail === undefined ? [] : [`${f}: Invalid value: "${address}": ${detail}`];
      assert.deepEqual(messages(validateNonSpecialIP(f, address)), expected);
    });
  }
});
