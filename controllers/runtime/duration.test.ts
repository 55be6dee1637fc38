import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { goDurationMs } from './duration.ts';

describe('goDurationMs', () => {
  test('adds up number+unit parts, fractions included', () => {
    assert.equal(goDurationMs('500ms'), 500);
    assert.equal(goDurationMs('1m30s'), 90_000);
    assert.equal(goDurationMs('2.5s'), 2500);
    assert.equal(goDurationMs('1h'), 3_600_000);
    assert.equal(goDurationMs('0s'), 0);
  });

  test('is undefined for empty values, missing units and junk between parts', () => {
    for (const value of ['', '15', 's', '1m 30s', '1d', '-1s', '10sx']) {
      assert.equal(goDurationMs(value), undefined, value);
    }
  });
});
