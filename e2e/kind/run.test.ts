import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT } from '../tools/helm.ts';
import { KCM_CONTROLLERS, kindClusterConfig, missingPrerequisites, runCommand } from './cluster.ts';
import { parseRunOptions, SKIP_LINE } from './run.ts';

const RUN_TS = join(REPO_ROOT, 'e2e', 'kind', 'run.ts');

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs e2e/kind/run.ts with PATH limited to `binDir`, so which tools exist is up to the test. */
function runSuite(
  binDir: string,
  args: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [RUN_TS, ...args],
      { env: { PATH: binDir, HOME: binDir, ...extraEnv }, timeout: 30_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

async function fakeTool(dir: string, name: string, script: string): Promise<void> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${script}\n`);
  await chmod(path, 0o755);
}

describe('npm run e2e:kind where it cannot run', () => {
  let root: string;
  let nothing: string;
  let clientWithoutEngine: string;
  let dockerWithoutKind: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'portico-kind-test-'));
    nothing = join(root, 'empty');
    clientWithoutEngine = join(root, 'client-only');
    dockerWithoutKind = join(root, 'docker-only');
    for (const dir of [nothing, clientWithoutEngine, dockerWithoutKind]) {
      await mkdir(dir);
    }
    // This machine's situation: the docker CLI is installed, no engine runs, and kind is absent.
    await fakeTool(
      clientWithoutEngine,
      'docker',
      'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1',
    );
    await fakeTool(dockerWithoutKind, 'docker', 'echo 28.2.2');
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('with the docker CLI but no engine it prints the skip line and exits non-zero', async () => {
    const outcome = await runSuite(clientWithoutEngine);
    assert.equal(outcome.stdout, `${SKIP_LINE}\n`);
    assert.equal(SKIP_LINE, 'skipped: needs docker and kind');
    assert.equal(outcome.code, 1);
    assert.match(outcome.stderr, /docker has no running engine/);
  });

  test('without docker at all it prints the skip line and exits non-zero', async () => {
    const outcome = await runSuite(nothing);
    assert.equal(outcome.stdout, `${SKIP_LINE}\n`);
    assert.equal(outcome.code, 1);
    assert.match(outcome.stderr, /docker is not installed/);
  });

  test('with a running docker engine but no kind it prints the skip line and exits non-zero', async () => {
    const outcome = await runSuite(dockerWithoutKind);
    assert.equal(outcome.stdout, `${SKIP_LINE}\n`);
    assert.equal(outcome.code, 1);
    assert.match(outcome.stderr, /kind is not installed/);
  });

  test('--allow-skip turns the skip into exit 0', async () => {
    const outcome = await runSuite(clientWithoutEngine, ['--allow-skip']);
    assert.equal(outcome.stdout, `${SKIP_LINE}\n`);
    assert.equal(outcome.code, 0);
  });

  test('PORTICO_E2E_ALLOW_SKIP=1 turns the skip into exit 0, and other values do not', async () => {
    assert.equal((await runSuite(clientWithoutEngine, [], { PORTICO_E2E_ALLOW_SKIP: '1' })).code, 0);
    assert.equal((await runSuite(clientWithoutEngine, [], { PORTICO_E2E_ALLOW_SKIP: 'true' })).code, 1);
  });

  test('on this machine, with its real PATH, it skips exactly when docker or kind is unusable', async () => {
    const missing = await missingPrerequisites(process.env);
    if (missing === undefined) {
      // Here the suite would really run; what the skip decision rests on must then hold.
      assert.equal((await runCommand('docker', ['info'], { echo: false })).code, 0);
      assert.equal((await runCommand('kind', ['version'], { echo: false })).code, 0);
      return;
    }
    const outcome = await new Promise<Outcome>((resolve) => {
      execFile(
        process.execPath,
        [RUN_TS],
        { env: { ...process.env, PORTICO_E2E_ALLOW_SKIP: '' } },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });
    assert.equal(outcome.stdout, `${SKIP_LINE}\n`);
    assert.equal(outcome.code, 1);
    assert.ok(outcome.stderr.includes(missing), outcome.stderr);
  });

  test('a bad flag is a usage error (exit 2), not a skip', async () => {
    const outcome = await runSuite(clientWithoutEngine, ['--mode', 'userspace']);
    assert.equal(outcome.code, 2);
    assert.equal(outcome.stdout, '');
    assert.match(
      outcome.stderr,
      /--mode: Unsupported value: "userspace": supported values: "iptables", "nftables", "ipvs"/,
    );
  });
});

describe('kind cluster configuration', () => {
  test('disables kube-proxy and the three built-in endpoint controllers', () => {
    const config = kindClusterConfig({ name: 'portico-e2e' }) as {
      networking: { kubeProxyMode: string; serviceSubnet: string };
      nodes: { role: string; kubeadmConfigPatches?: string[] }[];
    };
    assert.equal(config.networking.kubeProxyMode, 'none');
    assert.equal(
      KCM_CONTROLLERS,
      '*,-endpoint-controller,-endpointslice-controller,-endpointslicemirroring-controller',
    );
    const controlPlane = config.nodes.find((node) => node.role === 'control-plane')!;
    const patch = parse(controlPlane.kubeadmConfigPatches![0]!);
    assert.equal(patch.kind, 'ClusterConfiguration');
    assert.equal(patch.controllerManager.extraArgs.controllers, KCM_CONTROLLERS);
    assert.equal(config.nodes.filter((node) => node.role === 'worker').length, 2);
  });

  test('the service subnet equals the serviceClusterIPRange the suite installs the chart with', async () => {
    const values = parse(
      await readFile(join(REPO_ROOT, 'charts', 'portico', 'ci', 'kind-values.yaml'), 'utf8'),
    );
    const config = kindClusterConfig({ name: 'x' }) as {
      networking: { serviceSubnet: string; podSubnet: string };
    };
    assert.equal(values.serviceClusterIPRange, config.networking.serviceSubnet);
    assert.equal(values.agent.clusterCIDR, config.networking.podSubnet);
  });

  test('runs every proxy mode unless told otherwise, and one when asked', () => {
    assert.deepEqual(parseRunOptions([], {}).modes, ['iptables', 'nftables', 'ipvs']);
    assert.deepEqual(parseRunOptions(['--mode', 'nftables'], {}).modes, ['nftables']);
    assert.equal(parseRunOptions([], {}).allowSkip, false);
    assert.equal(parseRunOptions([], { PORTICO_E2E_ALLOW_SKIP: '1' }).allowSkip, true);
  });
});
