import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseLocalStartArgs } from './start.ts';

describe('parseLocalStartArgs', () => {
  test('defaults to a 2-node dataplane cluster in .portico/local', () => {
    assert.deepEqual(parseLocalStartArgs([]), {
      dataplane: true,
      nodes: 2,
      dataDir: '.portico/local',
      logLevel: 'warn',
    });
  });

  test('--no-dataplane and --nodes', () => {
    const options = parseLocalStartArgs(['--no-dataplane', '--nodes', '5']);
    assert.equal(options.dataplane, false);
    assert.equal(options.nodes, 5);
  });

  test('rejects a node count outside the address plan', () => {
    assert.throws(
      () => parseLocalStartArgs(['--nodes', '300']),
      /--nodes: Invalid value: "300": must be an integer from 1 to 250/,
    );
    assert.throws(() => parseLocalStartArgs(['--nodes', 'two']), /--nodes: Invalid value: "two"/);
  });
});
