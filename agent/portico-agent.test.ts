import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { detectIpvsSupport } from './ipvs/detect.ts';
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

  test('--mode ipvs on a kernel without IPVS logs one fallback line and goes on in iptables mode', async () => {
    const support = await detectIpvsSupport();
    const result = await runAgent(['--mode', 'ipvs', '--kubeconfig', '/nonexistent/kubeconfig']);
    // The missing kubeconfig stops the agent right after the mode is settled.
    assert.equal(result.code, 1);
    const fallbackLines = result.stdout.split('\n').filter((line) => line.includes('falling back to'));
    if (support.supported) {
      assert.deepEqual(fallbackLines, []);
    } else {
      assert.equal(fallbackLines.length, 1, result.stdout);
      assert.match(
        fallbackLines[0]!,
        /IPVS is not supported by this kernel \(.*\); falling back to the iptables proxy mode/,
      );
    }
  });

  test('--mode ipvs --no-fallback on a kernel without IPVS exits 1 with the reason, before reading the kubeconfig', async (t) => {
    const support = await detectIpvsSupport();
    if (support.supported) {
      t.diagnostic(`this kernel has IPVS (${support.reason}); nothing to refuse`);
      return;
    }
    const result = await runAgent([
      '--mode',
      'ipvs',
      '--no-fallback',
      '--kubeconfig',
      '/nonexistent/kubeconfig',
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /--mode: Invalid value: "ipvs": the kernel does not support IPVS/);
    assert.match(result.stderr, /--no-fallback is set/);
    assert.doesNotMatch(result.stdout + result.stderr, /nonexistent/);
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
