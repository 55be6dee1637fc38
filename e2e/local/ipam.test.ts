import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  ipv4ToNumber,
  nodeCidrCapacity,
  nodeCidrOf,
  numberToIpv4,
  PodIpAllocator,
  parseIpv4Cidr,
} from './ipam.ts';

describe('IPv4 helpers', () => {
  test('round-trip and CIDR parsing', () => {
    assert.equal(numberToIpv4(ipv4ToNumber('198.18.3.200')), '198.18.3.200');
    assert.deepEqual(parseIpv4Cidr('198.18.3.0/24'), {
      network: ipv4ToNumber('198.18.3.0'),
      prefixLength: 24,
    });
    assert.throws(
      () => parseIpv4Cidr('198.18.3.1/24'),
      /podCIDR: Invalid value: "198.18.3.1\/24": must be a network/,
    );
    assert.throws(() => parseIpv4Cidr('198.18.3.0'), /must be a valid IPv4 CIDR/);
    assert.throws(() => ipv4ToNumber('198.18.300.1'), /Invalid value: "198.18.300.1"/);
  });

  test('a CIDR too small for a gateway and a pod is rejected', () => {
    assert.throws(() => new PodIpAllocator('198.18.0.0/31'), /must be \/30 or larger/);
  });
});

describe('node pod CIDRs carved from the pod range', () => {
  test('node i gets the i-th subnet of the mask size, counted from the start of the range', () => {
    const plan = { podCidr: '10.0.0.0/16', nodeCidrMaskSize: 20 };
    assert.equal(nodeCidrCapacity(plan), 16);
    assert.deepEqual(
      [0, 1, 2, 15].map((index) => nodeCidrOf(plan, index)),
      ['10.0.0.0/20', '10.0.16.0/20', '10.0.32.0/20', '10.0.240.0/20'],
    );
    assert.equal(nodeCidrOf({ podCidr: '198.18.0.0/16', nodeCidrMaskSize: 24 }, 7), '198.18.7.0/24');
    assert.equal(nodeCidrOf({ podCidr: '10.0.0.0/8', nodeCidrMaskSize: 16 }, 200), '10.200.0.0/16');
    assert.equal(nodeCidrOf({ podCidr: '192.168.0.0/24', nodeCidrMaskSize: 24 }, 0), '192.168.0.0/24');
  });

  test('subnets of a range high in the address space stay exact (no signed 32-bit overflow)', () => {
    assert.equal(nodeCidrOf({ podCidr: '240.0.0.0/4', nodeCidrMaskSize: 8 }, 15), '255.0.0.0/8');
  });

  test('a mask shorter than the range, too long for a pod, or not an integer is rejected naming the flag', () => {
    assert.throws(
      () => nodeCidrCapacity({ podCidr: '10.0.0.0/16', nodeCidrMaskSize: 8 }),
      /^Error: --node-cidr-mask-size: Invalid value: 8: must be greater than or equal to the prefix length of --pod-cidr 10.0.0.0\/16 \(16\)$/,
    );
    assert.throws(
      () => nodeCidrCapacity({ podCidr: '10.0.0.0/16', nodeCidrMaskSize: 31 }),
      /--node-cidr-mask-size: Invalid value: 31: must be an integer from 16 to 30/,
    );
    assert.throws(
      () => nodeCidrCapacity({ podCidr: '10.0.0.0/16', nodeCidrMaskSize: 20.5 }),
      /--node-cidr-mask-size: Invalid value: 20.5/,
    );
  });

  test('a pod range that is not an IPv4 network is rejected naming --pod-cidr', () => {
    assert.throws(
      () => nodeCidrCapacity({ podCidr: '10.0.0.1/16', nodeCidrMaskSize: 24 }),
      /--pod-cidr: Invalid value: "10.0.0.1\/16": must be a network address \(host bits zero\)/,
    );
    assert.throws(
      () => nodeCidrCapacity({ podCidr: 'fd00::/64', nodeCidrMaskSize: 80 }),
      /--pod-cidr: Invalid value: "fd00::\/64": must be a valid IPv4 CIDR/,
    );
  });

  test('an index beyond the range says how many node CIDRs it holds', () => {
    assert.throws(
      () => nodeCidrOf({ podCidr: '10.0.0.0/16', nodeCidrMaskSize: 20 }, 16),
      /node index: Invalid value: 16: --pod-cidr 10.0.0.0\/16 holds 16 node pod CIDRs of \/20 \(indexes 0 to 15\)/,
    );
  });
});

describe('PodIpAllocator scenario on 198.18.4.0/29 (pods .2-.6)', () => {
  const allocator = new PodIpAllocator('198.18.4.0/29');
  const steps: [string, () => void][] = [
    ['capacity excludes network, gateway and broadcast', () => assert.equal(allocator.capacity, 5)],
    ['a gets the first pod address', () => assert.equal(allocator.allocate('a'), '198.18.4.2')],
    ['a asking again keeps its address', () => assert.equal(allocator.allocate('a'), '198.18.4.2')],
    ['b gets the next address', () => assert.equal(allocator.allocate('b'), '198.18.4.3')],
    ['a releases', () => allocator.release('a')],
    ["c does not get a's just-released address", () => assert.equal(allocator.allocate('c'), '198.18.4.4')],
    [
      'd and e fill the top of the range',
      () => {
        assert.equal(allocator.allocate('d'), '198.18.4.5');
        assert.equal(allocator.allocate('e'), '198.18.4.6');
      },
    ],
    ['f wraps around to the freed address', () => assert.equal(allocator.allocate('f'), '198.18.4.2')],
    [
      'g finds the range full',
      () => assert.throws(() => allocator.allocate('g'), /range is full \(podCIDR 198.18.4.0\/29\)/),
    ],
    [
      "g cannot claim b's address",
      () => assert.throws(() => allocator.claim('g', '198.18.4.3'), /already in use by pod b/),
    ],
    [
      'nobody can claim the gateway',
      () => assert.throws(() => allocator.claim('g', '198.18.4.1'), /not an assignable address/),
    ],
    [
      "b releases and g claims b's old address",
      () => {
        allocator.release('b');
        allocator.claim('g', '198.18.4.3');
        assert.equal(allocator.holder('198.18.4.3'), 'g');
      },
    ],
    [
      'releasing an unknown key is a no-op',
      () => {
        allocator.release('nobody');
        assert.equal(allocator.used, 5);
      },
    ],
  ];
  for (const [name, step] of steps) test(name, step);
});

describe('PodIpAllocator properties', () => {
  test('no two held keys ever share an IP, and every IP is inside the assignable range', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 20 })), { maxLength: 200 }),
        (operations) => {
          const allocator = new PodIpAllocator('198.18.9.0/28');
          const held = new Map<string, string>();
          for (const [isAllocate, id] of operations) {
            const key = `pod-${id}`;
            if (isAllocate) {
              try {
                held.set(key, allocator.allocate(key));
              } catch {
                assert.equal(allocator.used, allocator.capacity);
              }
            } else {
              allocator.release(key);
              held.delete(key);
            }
            const addresses = [...held.values()];
            assert.equal(new Set(addresses).size, addresses.length);
            for (const address of addresses) {
              const last = ipv4ToNumber(address) & 255;
              assert.ok(last >= 2 && last <= 14, address);
            }
          }
        },
      ),
    );
  });
});
