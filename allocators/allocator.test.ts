import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ClusterIPAllocator, NodePortAllocator, type RandomIndex } from './allocator.ts';
import { Bitmap } from './bitmap.ts';
import { AllocationError, type AllocationFailureReason, RangeMismatchError } from './errors.ts';

const lowest: RandomIndex = () => 0;

function failsWith(reason: AllocationFailureReason, message: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof AllocationError, String(error));
    assert.equal(error.reason, reason);
    assert.equal(error.message, message);
    return true;
  };
}

describe('ClusterIPAllocator scenario (IPv4 and IPv6)', () => {
  const families = [
    { cidr: '10.0.0.0/24', firstDynamic: '10.0.0.17', someStatic: '10.0.0.10', outside: '10.0.1.1' },
    { cidr: 'fd00::/120', firstDynamic: 'fd00::11', someStatic: 'fd00::a', outside: 'fd00::1:1' },
  ];
  for (const family of families) {
    test(`${family.cidr}: allocate, refuse, release, reuse`, () => {
      const allocator = new ClusterIPAllocator(family.cidr, { random: lowest });
      const steps: Array<[string, () => void]> = [
        [
          'dynamic allocation starts in the upper band',
          () => assert.equal(allocator.allocateNext(), family.firstDynamic),
        ],
        ['svc-a takes a static-band IP by hand', () => allocator.allocate(family.someStatic)],
        [
          "svc-b can't take svc-a's IP",
          () =>
            assert.throws(
              () => allocator.allocate(family.someStatic),
              failsWith('AlreadyAllocated', 'provided IP is already allocated'),
            ),
        ],
        [
          'an IP outside the CIDR is refused with the range in the message',
          () =>
            assert.throws(
              () => allocator.allocate(family.outside),
              failsWith(
                'NotInRange',
                `the provided IP (${family.outside}) is not in the valid range. The range of valid IPs is ${family.cidr}`,
              ),
            ),
        ],
        [
          'garbage is refused as invalid',
          () =>
            assert.throws(
              () => allocator.allocate('not-an-ip'),
              failsWith('InvalidValue', '"not-an-ip" is not a valid IP'),
            ),
        ],
        [
          'counts reflect two allocations',
          () => assert.deepEqual([allocator.used, allocator.has(family.someStatic)], [2, true]),
        ],
        ['svc-a releases', () => assert.equal(allocator.release(family.someStatic), true)],
        ['releasing again is a no-op', () => assert.equal(allocator.release(family.someStatic), false)],
        ['svc-b now gets it', () => allocator.allocate(family.someStatic)],
      ];
      for (const [name, step] of steps) {
        try {
          step();
        } catch (error) {
          throw new Error(`step "${name}" failed: ${(error as Error).message}`);
        }
      }
      assert.equal(allocator.free, allocator.range.size - 2);
    });
  }

  test('the network and broadcast addresses can never be allocated', () => {
    const allocator = new ClusterIPAllocator('10.0.0.0/24');
    for (const ip of ['10.0.0.0', '10.0.0.255']) {
      assert.throws(
        () => allocator.allocate(ip),
        (error: unknown) => (error as AllocationError).reason === 'NotInRange',
      );
    }
    const seen = new Set<string>();
    for (let i = 0; i < 254; i++) seen.add(allocator.allocateNext());
    assert.equal(seen.size, 254);
    assert.ok(!seen.has('10.0.0.0') && !seen.has('10.0.0.255'));
    assert.throws(() => allocator.allocateNext(), failsWith('Full', 'range is full'));
  });

  test('IPv6 addresses beyond the 65535 cap are not in range', () => {
    const allocator = new ClusterIPAllocator('fd00::/108');
    allocator.allocate('fd00::ffff');
    assert.throws(
      () => allocator.allocate('fd00::1:0'),
      (error: unknown) => (error as AllocationError).reason === 'NotInRange',
    );
  });

  test('a /32 range has nothing to give', () => {
    const allocator = new ClusterIPAllocator('10.0.0.1/32');
    assert.throws(() => allocator.allocateNext(), failsWith('Full', 'range is full'));
  });
});

describe('dynamic allocation bands', () => {
  test('the upper band fills before the lower band is touched, then the lower band is used', () => {
    const allocator = new ClusterIPAllocator('10.0.0.0/24');
    const upper: string[] = [];
    for (let i = 0; i < 254 - 16; i++) upper.push(allocator.allocateNext());
    const offsets = upper.map((ip) => allocator.range.offsetOf(ip)!);
    assert.ok(
      offsets.every((offset) => offset >= 16),
      'no static-band address before the upper band is full',
    );
    const lower = allocator.allocateNext();
    assert.ok(allocator.range.offsetOf(lower)! < 16, `${lower} comes from the static band`);
  });

  test('the random start spreads choices and the scan wraps inside the band', () => {
    const allocator = new NodePortAllocator(undefined, { random: (bound) => bound - 1 });
    assert.equal(allocator.allocateNext(), 32767, 'random start at the top of the upper band');
    assert.equal(
      allocator.allocateNext(),
      30086,
      'scan wraps to the start of the upper band, not into the static band',
    );
  });

  test('random sources pick distinct values until full (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 40, maxLength: 40 }), (draws) => {
        let i = 0;
        const allocator = new NodePortAllocator('30000-30039', {
          random: (bound) => draws[i++ % draws.length]! % bound,
        });
        const ports = new Set<number>();
        for (let k = 0; k < 40; k++) ports.add(allocator.allocateNext());
        assert.equal(ports.size, 40);
        assert.throws(() => allocator.allocateNext(), failsWith('Full', 'range is full'));
      }),
    );
  });
});

describe('NodePortAllocator', () => {
  test('errors are phrased as upstream', () => {
    const allocator = new NodePortAllocator();
    allocator.allocate(30080);
    assert.throws(
      () => allocator.allocate(30080),
      failsWith('AlreadyAllocated', 'provided port is already allocated'),
    );
    assert.throws(
      () => allocator.allocate(29999),
      failsWith(
        'NotInRange',
        'provided port is not in the valid range. The range of valid ports is 30000-32767',
      ),
    );
    assert.throws(() => allocator.allocate(70000), failsWith('InvalidValue', '70000 is not a valid port'));
  });

  test('allocates every port of a small range exactly once', () => {
    const allocator = new NodePortAllocator('30000-30099');
    const ports = new Set<number>();
    for (let i = 0; i < 100; i++) ports.add(allocator.allocateNext());
    assert.equal(ports.size, 100);
    assert.deepEqual(
      [...allocator.allocated()],
      [...ports].sort((a, b) => a - b),
    );
  });
});

describe('snapshot and restore', () => {
  test('a snapshot is a copy and restores into a fresh allocator', () => {
    const allocator = new ClusterIPAllocator('10.96.0.0/12');
    allocator.allocate('10.96.0.10');
    const snapshot = allocator.snapshot();
    allocator.allocate('10.96.0.11');
    assert.equal(snapshot.bitmap.count, 1);
    const restored = new ClusterIPAllocator('10.96.0.0/12');
    restored.restore(snapshot);
    assert.deepEqual([...restored.allocated()], ['10.96.0.10']);
  });

  test('a snapshot of another range is refused and changes nothing', () => {
    const allocator = new ClusterIPAllocator('10.96.0.0/12');
    allocator.allocate('10.96.0.10');
    const other = new ClusterIPAllocator('10.0.0.0/24').snapshot();
    assert.throws(() => allocator.restore(other), RangeMismatchError);
    assert.throws(
      () => allocator.restore({ range: '10.96.0.0/12', kind: 'IPv4', bitmap: new Bitmap(10) }),
      RangeMismatchError,
    );
    assert.deepEqual([...allocator.allocated()], ['10.96.0.10']);
  });
});
