import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { l2SettingsFromEnv, targetsForNode } from './l2-announcement.ts';

describe('L2 announcement settings', () => {
  test('the agent turns L2 announcement on from its environment', () => {
    assert.equal(l2SettingsFromEnv({}), undefined);
    assert.equal(l2SettingsFromEnv({ PORTICO_L2_ANNOUNCE: 'false' }), undefined);
    assert.deepEqual(l2SettingsFromEnv({ PORTICO_L2_ANNOUNCE: 'true' }), {
      leaseNamespace: 'portico-system',
    });
    assert.deepEqual(
      l2SettingsFromEnv({ PORTICO_L2_ANNOUNCE: 'true', PORTICO_L2_INTERFACE: 'eth1', POD_NAMESPACE: 'lb' }),
      { leaseNamespace: 'lb', interface: 'eth1' },
    );
    assert.throws(
      () => l2SettingsFromEnv({ PORTICO_L2_ANNOUNCE: 'yes' }),
      /PORTICO_L2_ANNOUNCE: Unsupported value: "yes": supported values: "true", "false"/,
    );
  });
});

describe('targetsForNode', () => {
  test('each IP the node is a candidate for, with its rank and the nodes ahead of it', () => {
    const plan = [
      { ip: '198.18.200.1', services: ['default/a'], candidates: ['node-b', 'node-a', 'node-c'] },
      { ip: '198.18.200.2', services: ['default/b'], candidates: ['node-a'] },
      { ip: '198.18.200.3', services: ['default/c'], candidates: ['node-c'] },
    ];
    assert.deepEqual(targetsForNode(plan, 'node-a'), [
      { ip: '198.18.200.1', rank: 1, preferred: ['node-b'] },
      { ip: '198.18.200.2', rank: 0, preferred: [] },
    ]);
  });
});
