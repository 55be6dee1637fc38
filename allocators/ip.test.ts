import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Address6 } from 'ip-address';
import { formatIP, parseIP } from './ip.ts';

describe('parseIP and formatIP', () => {
  test('formatIP agrees with ip-address’s RFC 5952 form and round-trips through parseIP', () => {
    fc.assert(
      fc.property(fc.ipV6(), (text) => {
        if (text.includes('.')) return;
        const parsed = parseIP(text);
        assert.ok(parsed !== undefined, text);
        const formatted = formatIP('IPv6', parsed.value);
        assert.equal(formatted, new Address6(text).correctForm());
        assert.deepEqual(parseIP(formatted), parsed);
      }),
    );
  });

  test('IPv4 round-trips', () => {
    fc.assert(
      fc.property(fc.ipV4(), (text) => {
        const parsed = parseIP(text);
        assert.ok(parsed !== undefined);
        assert.equal(formatIP('IPv4', parsed.value), text);
      }),
    );
  });

  test('canonical IPv6 corner cases', () => {
    assert.equal(formatIP('IPv6', 0n), '::');
    assert.equal(formatIP('IPv6', 1n), '::1');
    assert.equal(formatIP('IPv6', parseIP('2001:db8:0:1:0:0:0:1')!.value), '2001:db8:0:1::1');
    assert.equal(formatIP('IPv6', parseIP('2001:0:0:1:0:0:0:1')!.value), '2001:0:0:1::1');
    assert.equal(formatIP('IPv6', parseIP('2001:db8:1:1:1:1:0:1')!.value), '2001:db8:1:1:1:1:0:1');
    assert.equal(formatIP('IPv6', parseIP('FD00::A')!.value), 'fd00::a');
  });

  for (const bad of [
    '',
    '10.0.0',
    '10.0.0.01',
    '10.0.0.1/32',
    'fe80::1%eth0',
    '::ffff:10.0.0.1',
    ' 10.0.0.1',
    'x',
  ]) {
    test(`rejects ${JSON.stringify(bad)}`, () => {
      assert.equal(parseIP(bad), undefined);
    });
  }
});
