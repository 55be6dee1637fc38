import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { countRules, LAST_CHANGE_TRIGGER_TIME_ANNOTATION, triggerTimeOf } from './metrics.ts';

const entrypoint = new URL('./portico-agent.ts', import.meta.url).pathname;

function runAgent(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [entrypoint, ...args], { timeout: 20_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
  });
}

describe('portico-agent entrypoint', () => {
  test('--help prints the flags and exits 0', async () => {
    const result = await runAgent(['--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /--mode iptables\|nftables\|ipvs/);
    assert.match(result.stdout, /--healthz-bind-address/);
  });

  test('a bad flag exits 2 with the error and the usage', async () => {
    const result = await runAgent(['--sync-period', 'often']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--sync-period: Invalid value: "often"/);
    assert.match(result.stderr, /Usage: portico-agent/);
  });

  test('a mode this build lacks exits 2 with a clear message, before touching the API or the kernel', async () => {
    const result = await runAgent(['--mode', 'ipvs', '--kubeconfig', '/nonexistent']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /the ipvs proxier is not available yet; use --mode iptables or nftables/);
  });

  test('without a kubeconfig the agent exits 1 and says why', async () => {
    const result = await runAgent(['--kubeconfig', '/nonexistent/kubeconfig', '--log-level', 'error']);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /portico-agent failed.*nonexistent/);
  });
});

describe('agent metrics helpers', () => {
  test('rules are counted by their -A lines', () => {
    assert.equal(
      countRules(
        '*nat\n:PORTICO-SERVICES - [0:0]\n-A PORTICO-SERVICES -j RETURN\n-A X -j Y\n-X OLD\nCOMMIT\n',
      ),
      2,
    );
  });

  test('the trigger time is read from the annotation; absent or malformed gives null', () => {
    assert.equal(
      triggerTimeOf({ [LAST_CHANGE_TRIGGER_TIME_ANNOTATION]: '2026-11-24T13:00:00Z' }),
      Date.parse('2026-11-24T13:00:00Z'),
    );
    assert.equal(triggerTimeOf({ [LAST_CHANGE_TRIGGER_TIME_ANNOTATION]: 'yesterday' }), null);
    assert.equal(triggerTimeOf(undefined), null);
  });
});
