import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backendProbabilities } from '../iptables/trace.ts';
import { SimulatedNftables, simulateNftables, traceNftablesPacket } from './trace.ts';

const BASE = [
  'add table ip t',
  'add chain ip t pre { type nat hook prerouting priority -100 ; }',
  'add chain ip t a',
  'add chain ip t b',
].join('\n');

describe('simulated nft -f', () => {
  test('a transaction with an error changes nothing, as the kernel’s', () => {
    const nft = simulateNftables(`${BASE}\nadd rule ip t pre jump a\n`);
    assert.throws(
      () => nft.apply('add rule ip t a accept\ndelete chain ip t b\ndelete chain ip t zzz\n'),
      /missing chain zzz/,
    );
    assert.deepEqual(nft.rules('ip t', 'a'), []);
    assert.deepEqual(nft.chains('ip t'), ['a', 'b', 'pre']);
  });

  test('deleting a referenced chain or set, or a missing element, fails', () => {
    const nft = simulateNftables(
      `${BASE}\nadd map ip t m { type inet_proto . inet_service : verdict ; }\nadd element ip t m { tcp . 80 : goto b }\nadd rule ip t pre meta l4proto . th dport vmap @m\n`,
    );
    assert.throws(() => nft.apply('delete chain ip t b\n'), /referenced chain b/);
    assert.throws(() => nft.apply('delete map ip t m\n'), /referenced set m/);
    assert.throws(() => nft.apply('delete element ip t m { tcp . 81 }\n'), /missing element/);
    assert.throws(() => nft.apply('add element ip t m { tcp . 80 : goto a }\n'), /another value/);
  });

  test('rule shapes the renderer never emits are refused', () => {
    const nft = simulateNftables(BASE);
    assert.throws(() => nft.apply('add rule ip t a iifname "eth0" accept\n'), /unsupported rule shape/);
    assert.throws(
      () => nft.apply('add rule ip t a numgen random mod 1 == 0 goto b\n'),
      /unsupported rule shape/,
    );
    assert.throws(() => nft.apply('insert rule ip t a accept\n'), /unsupported statement/);
  });
});

describe('nft tracer', () => {
  test('chained numgen rules give each endpoint 1/n', () => {
    const nft = new SimulatedNftables();
    nft.apply(
      [
        BASE,
        'add chain ip t e1',
        'add chain ip t e2',
        'add chain ip t e3',
        'add rule ip t pre goto a',
        'add rule ip t pre drop',
        'add rule ip t a numgen random mod 3 == 0 goto e1',
        'add rule ip t a numgen random mod 2 == 0 goto e2',
        'add rule ip t a goto e3',
        'add rule ip t e1 meta l4proto tcp dnat to 10.0.0.1:80',
        'add rule ip t e2 meta l4proto tcp dnat to 10.0.0.2:80',
        'add rule ip t e3 meta l4proto tcp dnat to 10.0.0.3:80',
      ].join('\n'),
    );
    const outcomes = traceNftablesPacket(nft, {
      source: '198.18.9.9',
      destination: '10.96.0.1',
      protocol: 'tcp',
      port: 80,
      localAddresses: [],
    });
    const probabilities = backendProbabilities(outcomes);
    assert.deepEqual(Object.keys(probabilities).sort(), ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80']);
    for (const value of Object.values(probabilities)) assert.ok(Math.abs(value - 1 / 3) < 1e-6);
  });

  test('a chain entered by goto that falls off ends the caller too; one entered by jump returns', () => {
    const packet = {
      source: '198.18.9.9',
      destination: '10.96.0.1',
      protocol: 'tcp' as const,
      port: 80,
      localAddresses: [],
    };
    for (const [verb, expected] of [
      ['goto', { ACCEPT: 1 }],
      ['jump', { DROP: 1 }],
    ] as const) {
      const nft = simulateNftables(`${BASE}\nadd rule ip t pre ${verb} b\nadd rule ip t pre drop\n`);
      assert.deepEqual(backendProbabilities(traceNftablesPacket(nft, packet)), expected, verb);
    }
  });
});
