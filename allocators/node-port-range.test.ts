import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidRangeError } from './errors.ts';
import { NodePortRange, nodePortStaticBandSize } from './node-port-range.ts';

describe('NodePortRange (upstream vectors)', () => {
  const cases: Array<[string, string, number, number]> = [
    ['30000-32767', '30000-32767', 2768, 86],
    ['30000+2767', '30000-32767', 2768, 86],
    ['30000-30015', '30000-30015', 16, 0],
    ['30000-30016', '30000-30016', 17, 16],
    ['20000-29999', '20000-29999', 10000, 128],
    ['1-65535', '1-65535', 65535, 128],
    ['8080', '8080-8080', 1, 0],
  ];
  for (const [text, spec, size, staticBand] of cases) {
    test(`${text}: ${size} ports, static band ${staticBand}`, () => {
      const range = new NodePortRange(text);
      assert.equal(range.spec, spec);
      assert.equal(range.size, size);
      assert.equal(range.staticBandSize, staticBand);
      assert.equal(range.valueAt(0), range.base);
      assert.equal(range.valueAt(size - 1), range.base + size - 1);
    });
  }

  test('the default range has the static band 30000-30085', () => {
    const range = new NodePortRange();
    assert.equal(range.spec, '30000-32767');
    assert.equal(range.valueAt(range.staticBandSize - 1), 30085);
    assert.equal(nodePortStaticBandSize(2768), 86);
  });

  test('ports outside the range have no offset', () => {
    const range = new NodePortRange();
    assert.equal(range.offsetOf(29999), undefined);
    assert.equal(range.offsetOf(32768), undefined);
    assert.equal(range.offsetOf(30080), 80);
    assert.equal(range.offsetOf(30080.5), undefined);
  });

  test('the not-in-range message is upstream’s, with the range', () => {
    assert.equal(
      new NodePortRange().notInRangeMessage(),
      'provided port is not in the valid range. The range of valid ports is 30000-32767',
    );
  });

  for (const bad of ['', 'abc', '30000-', '32767-30000', '0-100', '60000-70000', '30000-32767-1']) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(() => new NodePortRange(bad), InvalidRangeError);
    });
  }
});
