import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backendProbabilities, SimulatedIptables, tracePacket } from './trace.ts';

describe('simulated iptables-restore --noflush', () => {
  test('declaring a chain flushes it; undeclared chains keep their rules', () => {
    const iptables = new SimulatedIptables();
    iptables.restore('*nat\n:A - [0:0]\n:B - [0:0]\n-A A -j B\n-A B -j RETURN\nCOMMIT\n');
    iptables.restore('*nat\n:A - [0:0]\n-A A -j ACCEPT\nCOMMIT\n');
    assert.deepEqual(iptables.rules('nat', 'A'), ['-j ACCEPT']);
    assert.deepEqual(iptables.rules('nat', 'B'), ['-j RETURN']);
  });

  test('a table whose input fails keeps its previous content, as the kernel’s atomic commit', () => {
    const iptables = new SimulatedIptables();
    iptables.restore('*nat\n:A - [0:0]\n:B - [0:0]\n-A A -j B\nCOMMIT\n');
    assert.throws(() => iptables.restore('*nat\n:B - [0:0]\n-X B\nCOMMIT\n'), /jumps to missing chain B/);
    assert.throws(() => iptables.restore('*nat\n-X C\nCOMMIT\n'), /-X of unknown chain C/);
    assert.throws(() => iptables.restore('*nat\n-A D -j ACCEPT\nCOMMIT\n'), /unknown chain D/);
    assert.deepEqual(iptables.chains('nat'), ['A', 'B', 'INPUT', 'OUTPUT', 'POSTROUTING', 'PREROUTING']);
  });

  test('rule shapes the renderer never emits are refused', () => {
    const iptables = new SimulatedIptables();
    assert.throws(
      () => iptables.restore('*nat\n:A - [0:0]\n-A A -m owner --uid-owner 0 -j ACCEPT\nCOMMIT\n'),
      /owner/,
    );
    assert.throws(() => iptables.restore('*nat\n:A - [0:0]\n-A A -i eth0 -j ACCEPT\nCOMMIT\n'), /"-i"/);
  });
});

describe('tracer', () => {
  test('explores statistic branches and multiplies probabilities through nested chains', () => {
    const iptables = new SimulatedIptables();
    iptables.restore(
      [
        '*nat',
        ':S - [0:0]',
        ':T - [0:0]',
        '-A PREROUTING -j S',
        '-A S -m statistic --mode random --probability 0.5000000000 -j T',
        '-A S -m tcp -p tcp -j DNAT --to-destination 10.0.0.3:80',
        '-A T -m statistic --mode random --probability 0.5000000000 -m tcp -p tcp -j DNAT --to-destination 10.0.0.1:80',
        '-A T -m tcp -p tcp -j DNAT --to-destination 10.0.0.2:80',
        'COMMIT',
      ].join('\n'),
    );
    const outcomes = tracePacket(iptables, {
      source: '198.18.9.9',
      destination: '10.96.0.1',
      protocol: 'tcp',
      port: 80,
      localAddresses: [],
    });
    assert.deepEqual(backendProbabilities(outcomes), {
      '10.0.0.1:80': 0.25,
      '10.0.0.2:80': 0.25,
      '10.0.0.3:80': 0.5,
    });
  });

  test('filter sees the translated destination and port; REJECT there wins', () => {
    const iptables = new SimulatedIptables();
    iptables.restore(
      '*nat\n-A PREROUTING -m tcp -p tcp -d 10.96.0.1 --dport 80 -j DNAT --to-destination 10.0.0.1:8080\nCOMMIT\n',
    );
    iptables.restore('*filter\n-A FORWARD -m tcp -p tcp -d 10.0.0.1 --dport 8080 -j REJECT\nCOMMIT\n');
    const outcomes = tracePacket(iptables, {
      source: '198.18.9.9',
      destination: '10.96.0.1',
      protocol: 'tcp',
      port: 80,
      localAddresses: [],
    });
    assert.deepEqual(backendProbabilities(outcomes), { REJECT: 1 });
  });
});
