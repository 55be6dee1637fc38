import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DriverName, ProxyMode, Scenario, ScenarioDriver } from './driver.ts';
import { appliesTo, runScenarios, SCENARIOS } from './index.ts';

/** Only what runScenarios itself touches; a scenario that used more would fail loudly. */
function recordingDriver(driverName: DriverName, mode: ProxyMode, calls: string[]): ScenarioDriver {
  const refuse = (): never => {
    throw new Error('not used by runScenarios');
  };
  return {
    driverName,
    mode,
    ensureClient: async () => {
      calls.push('ensureClient');
    },
    apply: refuse,
    delete: refuse,
    waitFor: refuse,
    read: refuse,
    execInClient: refuse,
    fetchFromOutside: refuse,
    nodes: refuse,
    nodeRules: refuse,
    loadBalancerRange: refuse,
    setPodReadiness: refuse,
    kubectl: refuse,
  };
}

function scenario(name: string, calls: string[], extra: Partial<Scenario> = {}): Scenario {
  return {
    name,
    ...extra,
    run: async () => {
      calls.push(name);
    },
  };
}

describe('runScenarios', () => {
  test('makes the client ready, then runs the scenarios in order, skipping those for other drivers or modes', async () => {
    const calls: string[] = [];
    const lines: string[] = [];
    await runScenarios(
      recordingDriver('kind', 'nftables', calls),
      [
        scenario('first', calls),
        scenario('local only', calls, { drivers: ['local'] }),
        scenario('iptables only', calls, { modes: ['iptables'] }),
        scenario('kind and nftables', calls, { drivers: ['kind'], modes: ['nftables', 'ipvs'] }),
      ],
      (line) => lines.push(line),
    );
    assert.deepEqual(calls, ['ensureClient', 'first', 'kind and nftables']);
    assert.equal(lines.filter((line) => line.startsWith('-- run ')).length, 2);
    assert.ok(lines.some((line) => line.startsWith('-- skip [kind/nftables] local only')));
    assert.ok(lines.some((line) => /^-- ok {3}\[kind\/nftables\] first \(\d+\.\d s\)$/.test(line)));
  });

  test('stops at the first failure and rethrows it with the scenario name, driver and mode', async () => {
    const calls: string[] = [];
    const lines: string[] = [];
    const cause = new Error('only 3 pods answered');
    const failing: Scenario = {
      name: 'the demo',
      run: async () => {
        throw cause;
      },
    };
    await assert.rejects(
      runScenarios(recordingDriver('local', 'ipvs', calls), [failing, scenario('never', calls)], (line) =>
        lines.push(line),
      ),
      (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.equal(error.message, 'scenario "the demo" failed in local/ipvs: only 3 pods answered');
        assert.equal(error.cause, cause);
        return true;
      },
    );
    assert.deepEqual(calls, ['ensureClient']);
    assert.ok(lines.includes('-- FAIL [local/ipvs] the demo'));
  });
});

describe('the scenario list', () => {
  test('names are unique, so a failure names one scenario', () => {
    const names = SCENARIOS.map((entry) => entry.name);
    assert.equal(new Set(names).size, names.length);
  });

  test('every scenario runs on the local driver in some mode (npm test covers it)', () => {
    for (const entry of SCENARIOS) {
      const runs = (['iptables', 'nftables', 'ipvs'] as const).some((mode) =>
        appliesTo(entry, 'local', mode),
      );
      assert.ok(runs, `${entry.name} never runs locally`);
    }
  });
});
