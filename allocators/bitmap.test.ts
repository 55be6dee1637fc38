import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { BITMAP_FORMAT_VERSION, Bitmap, BitmapFormatError } from './bitmap.ts';

describe('Bitmap', () => {
  test('set, test, clear and count track each other', () => {
    const bitmap = new Bitmap(100);
    assert.equal(bitmap.set(0), true);
    assert.equal(bitmap.set(31), true);
    assert.equal(bitmap.set(32), true);
    assert.equal(bitmap.set(99), true);
    assert.equal(bitmap.set(32), false, 'setting twice reports it was already set');
    assert.equal(bitmap.count, 4);
    assert.equal(bitmap.free, 96);
    assert.equal(bitmap.test(31), true);
    assert.equal(bitmap.test(30), false);
    assert.equal(bitmap.clear(31), true);
    assert.equal(bitmap.clear(31), false, 'clearing twice reports it was already clear');
    assert.equal(bitmap.count, 3);
    assert.deepEqual([...bitmap.setIndexes()], [0, 32, 99]);
  });

  test('indexes outside [0, size) are rejected', () => {
    const bitmap = new Bitmap(10);
    assert.throws(() => bitmap.set(10), RangeError);
    assert.throws(() => bitmap.test(-1), RangeError);
    assert.throws(() => bitmap.clear(1.5), RangeError);
    assert.throws(() => new Bitmap(-1), RangeError);
  });

  test('findFree scans forward from the start and wraps inside the band', () => {
    const bitmap = new Bitmap(100);
    for (let i = 10; i < 20; i++) bitmap.set(i);
    assert.equal(bitmap.findFree(12), 20);
    assert.equal(bitmap.findFree(5), 5);
    for (let i = 20; i < 100; i++) bitmap.set(i);
    assert.equal(bitmap.findFree(50), 0, 'wraps to the start of the bitmap');
    assert.equal(bitmap.findFree(15, 10, 100), -1, 'band [10, 100) is full');
    bitmap.clear(11);
    assert.equal(bitmap.findFree(50, 10, 100), 11, 'wraps to the start of the band, not of the bitmap');
    assert.equal(bitmap.findFree(3, 0, 10), 3);
    assert.equal(new Bitmap(0).findFree(0, 0, 0), -1);
    assert.throws(() => bitmap.findFree(5, 10, 100), RangeError, 'start outside the band');
  });

  test('findFree crosses fully-set words', () => {
    const bitmap = new Bitmap(1 << 20);
    for (let i = 0; i < (1 << 20) - 1; i++) bitmap.set(i);
    assert.equal(bitmap.findFree(0), (1 << 20) - 1);
    assert.equal(bitmap.findFree(5, 0, (1 << 20) - 1), -1);
    bitmap.clear(3);
    assert.equal(bitmap.findFree(4), (1 << 20) - 1);
    bitmap.set((1 << 20) - 1);
    assert.equal(bitmap.findFree(4), 3, 'wraps around after a million set entries');
  });

  test('countRange counts only inside the band', () => {
    const bitmap = new Bitmap(200);
    for (const i of [0, 5, 31, 32, 63, 64, 150, 199]) bitmap.set(i);
    assert.equal(bitmap.countRange(0, 200), 8);
    assert.equal(bitmap.countRange(5, 64), 4);
    assert.equal(bitmap.countRange(6, 31), 0);
    assert.equal(bitmap.countRange(150, 151), 1);
  });

  test('matches a Set<number> model under random operations', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.tuple(fc.constantFrom('set', 'clear', 'find'), fc.nat(), fc.nat(), fc.nat()), {
          maxLength: 200,
        }),
        (size, operations) => {
          const bitmap = new Bitmap(size);
          const model = new Set<number>();
          for (const [operation, a, b, c] of operations) {
            const index = a % size;
            if (operation === 'set') {
              assert.equal(bitmap.set(index), !model.has(index));
              model.add(index);
            } else if (operation === 'clear') {
              assert.equal(bitmap.clear(index), model.has(index));
              model.delete(index);
            } else {
              const lo = Math.min(b % size, c % size);
              const hi = Math.max(b % size, c % size) + 1;
              const start = lo + (a % (hi - lo));
              let expected = -1;
              for (let k = 0; k < hi - lo; k++) {
                const at = lo + ((start - lo + k) % (hi - lo));
                if (!model.has(at)) {
                  expected = at;
                  break;
                }
              }
              assert.equal(bitmap.findFree(start, lo, hi), expected);
            }
          }
          assert.equal(bitmap.count, model.size);
          assert.deepEqual(
            [...bitmap.setIndexes()],
            [...model].sort((x, y) => x - y),
          );
        },
      ),
    );
  });
});

describe('Bitmap serialization', () => {
  test('round-trips through bytes and base64 for sparse, dense and odd-sized bitmaps', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5000 }), fc.array(fc.nat()), (size, picks) => {
        const bitmap = new Bitmap(size);
        if (size > 0) for (const pick of picks) bitmap.set(pick % size);
        const parsed = Bitmap.fromBase64(bitmap.toBase64(), size);
        assert.ok(parsed.equals(bitmap));
        assert.ok(Bitmap.fromBytes(bitmap.toBytes()).equals(bitmap));
      }),
    );
  });

  test('a sparse /12-sized bitmap serializes to a few hundred bytes', () => {
    const bitmap = new Bitmap((1 << 20) - 2);
    for (let i = 0; i < 100; i++) bitmap.set(i * 7919);
    const bytes = bitmap.toBytes();
    assert.ok(bytes.length < 2000, `got ${bytes.length} bytes`);
    assert.equal(bytes[0], BITMAP_FORMAT_VERSION);
  });

  test('a full bitmap serializes and parses back', () => {
    const bitmap = new Bitmap(1000);
    for (let i = 0; i < 1000; i++) bitmap.set(i);
    const parsed = Bitmap.fromBytes(bitmap.toBytes(), 1000);
    assert.equal(parsed.count, 1000);
  });

  const valid = (() => {
    const bitmap = new Bitmap(20);
    bitmap.set(3);
    bitmap.set(19);
    return bitmap;
  })();
  const rawBytes = (): Uint8Array => {
    // Force the raw layout so byte offsets below are predictable: 20 bits need 3 payload bytes.
    const bytes = new Uint8Array(13);
    bytes.set([BITMAP_FORMAT_VERSION, 0, 0, 0, 0, 20, 0, 0, 0, 2, 0b1000, 0, 0b1000]);
    return bytes;
  };

  test('the hand-built raw layout parses to the expected entries', () => {
    assert.ok(Bitmap.fromBytes(rawBytes()).equals(valid));
  });

  const rejections: Array<[string, () => Uint8Array | string, RegExp, number?]> = [
    ['shorter than the header', () => new Uint8Array(4), /shorter than its 10-byte header/],
    [
      'an unknown format version',
      () => {
        const bytes = rawBytes();
        bytes[0] = 9;
        return bytes;
      },
      /format version 9 is not supported/,
    ],
    [
      'an unknown payload encoding',
      () => {
        const bytes = rawBytes();
        bytes[1] = 7;
        return bytes;
      },
      /payload encoding 7 is not supported/,
    ],
    [
      'a truncated payload',
      () => rawBytes().subarray(0, 12),
      /payload is 2 bytes, a bitmap of size 20 needs 3/,
    ],
    [
      'bits set beyond the size',
      () => {
        const bytes = rawBytes();
        bytes[12] = 0b10001000;
        bytes[9] = 3;
        return bytes;
      },
      /entries set at or beyond its size 20/,
    ],
    [
      'a count that disagrees with the payload',
      () => {
        const bytes = rawBytes();
        bytes[9] = 5;
        return bytes;
      },
      /declares 5 entries set but the payload has 2/,
    ],
    ['a size other than the range size', () => rawBytes(), /size 20 does not match the range size 21/, 21],
    [
      'a corrupt deflate stream',
      () => {
        const bytes = rawBytes();
        bytes[1] = 1;
        return bytes;
      },
      /does not inflate|payload is/,
    ],
    ['text that is not base64', () => 'not*base64!', /not valid base64/],
  ];
  for (const [name, input, message, expectedSize] of rejections) {
    test(`rejects ${name}`, () => {
      const value = input();
      assert.throws(
        () => (typeof value === 'string' ? Bitmap.fromBase64(value) : Bitmap.fromBytes(value, expectedSize)),
        (error: unknown) => error instanceof BitmapFormatError && message.test(error.message),
      );
    });
  }
});

test('Bitmap constructor refuses words with entries beyond its size', () => {
  assert.throws(() => new Bitmap(20, Uint32Array.of(1 << 20)), /entries set at or beyond its size/);
  assert.equal(new Bitmap(20, Uint32Array.of((1 << 20) - 1)).count, 20);
  assert.throws(() => new Bitmap(20, new Uint32Array(2)), /needs 1 words, got 2/);
});
