import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ensureHelm, extractLayerTool, HELM_PATH, REPO_ROOT, runHelm } from './helm.ts';

const execFileAsync = promisify(execFile);

describe('e2e/tools/helm', () => {
  test('concurrent extractions into one place all end with one working binary and no leftovers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-helm-test-'));
    try {
      const target = join(dir, 'tools', 'helm');
      const paths = await Promise.all(Array.from({ length: 4 }, () => extractLayerTool('helm', target)));
      assert.deepEqual(new Set(paths), new Set([target]));
      assert.deepEqual(await readdir(join(dir, 'tools')), ['helm']);
      const { stdout } = await execFileAsync(target, ['version', '--short']);
      assert.match(stdout, /^v\d+\.\d+\.\d+/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('ensureHelm returns the same path to every caller in a process', async () => {
    const [first, second] = await Promise.all([ensureHelm(), ensureHelm()]);
    assert.equal(first, HELM_PATH);
    assert.equal(second, HELM_PATH);
  });

  test('runHelm keeps helm state under .portico/helm and reports failures instead of throwing', async () => {
    const env = await runHelm(['env']);
    assert.equal(env.code, 0);
    assert.match(env.stdout, new RegExp(`HELM_CACHE_HOME="${join(REPO_ROOT, '.portico', 'helm', 'cache')}"`));
    assert.match(
      env.stdout,
      new RegExp(`HELM_CONFIG_HOME="${join(REPO_ROOT, '.portico', 'helm', 'config')}"`),
    );
    const failed = await runHelm(['no-such-command']);
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /unknown command "no-such-command"/);
  });

  test('the CLI prints the binary path', async () => {
    const { stdout } = await execFileAsync(process.execPath, [join(REPO_ROOT, 'e2e', 'tools', 'helm.ts')]);
    assert.equal(stdout, `${HELM_PATH}\n`);
  });
});
