import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { l2SettingsFromEnv } from './l2-announcement.ts';

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
