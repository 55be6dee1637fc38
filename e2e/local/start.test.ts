import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { kubeconfigGiven, parseLocalStartArgs } from './start.ts';

const run = promisify(execFile);
const startScript = new URL('./start.ts', import.meta.url).pathname;
const demo = new URL('../../examples/clusterip-demo/', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;

describe('parseLocalStartArgs', () => {
  test('defaults to a 2-node dataplane cluster in .portico/local with the iptables proxy', () => {
    assert.deepEqual(parseLocalStartArgs([]), {
      dataplane: true,
      nodes: 2,
      podCidr: '198.18.0.0/16',
      nodeCidrMaskSize: 24,
      dataDir: '.portico/local',
      logLevel: 'warn',
      proxyMode: 'iptables',
    });
  });

  test('--no-dataplane, --nodes and --proxy-mode', () => {
    const options = parseLocalStartArgs(['--no-dataplane', '--nodes', '5', '--proxy-mode', 'nftables']);
    assert.equal(options.dataplane, false);
    assert.equal(options.nodes, 5);
    assert.equal(options.proxyMode, 'nftables');
  });

  test('rejects a node count outside the address plan and an unknown proxy mode', () => {
    assert.throws(
      () => parseLocalStartArgs(['--nodes', '300']),
      /--nodes: Invalid value: 300: must be an integer from 1 to 250/,
    );
    assert.throws(
      () => parseLocalStartArgs(['--nodes', 'two']),
      /--nodes: Invalid value: "two": must be an integer/,
    );
    assert.throws(
      () => parseLocalStartArgs(['--proxy-mode', 'userspace']),
      /--proxy-mode: Unsupported value: "userspace": supported values: "iptables", "nftables", "ipvs"/,
    );
  });
});

describe('--pod-cidr and --node-cidr-mask-size', () => {
  test('control-plane mode takes any IPv4 range: 50 nodes of /20 in 10.0.0.0/8', () => {
    const options = parseLocalStartArgs([
      '--no-dataplane',
      '--nodes',
      '50',
      '--pod-cidr',
      '10.0.0.0/8',
      '--node-cidr-mask-size',
      '20',
    ]);
    assert.deepEqual(
      [options.dataplane, options.nodes, options.podCidr, options.nodeCidrMaskSize],
      [false, 50, '10.0.0.0/8', 20],
    );
  });

  test('the dataplane keeps pods inside 198.18.0.0/16 and below the LAN', () => {
    assert.throws(
      () => parseLocalStartArgs(['--pod-cidr', '10.0.0.0/8']),
      /--pod-cidr: Invalid value: "10.0.0.0\/8": the dataplane configures and routes pod addresses/,
    );
    assert.throws(
      () => parseLocalStartArgs(['--nodes', '16', '--node-cidr-mask-size', '20']),
      /--nodes: Invalid value: 16: .* holds 15 node pod CIDRs below the LAN 198.18.255.0\/24/,
    );
    assert.equal(parseLocalStartArgs(['--nodes', '15', '--node-cidr-mask-size', '20']).nodes, 15);
  });

  test('a mask shorter than the range or not a number is refused naming the flag', () => {
    assert.throws(
      () =>
        parseLocalStartArgs(['--no-dataplane', '--pod-cidr', '10.0.0.0/16', '--node-cidr-mask-size', '12']),
      /--node-cidr-mask-size: Invalid value: 12: must be greater than or equal to the prefix length of --pod-cidr 10.0.0.0\/16 \(16\)/,
    );
    assert.throws(
      () => parseLocalStartArgs(['--node-cidr-mask-size', '/24']),
      /--node-cidr-mask-size: Invalid value: "\/24": must be an integer/,
    );
  });

  test('--help lists the flags and starts nothing', async () => {
    const { stdout } = await run(process.execPath, [startScript, '--help'], {
      env: { ...process.env, KUBECONFIG: '' },
      timeout: 30_000,
    });
    for (const flag of ['--no-dataplane', '--nodes', '--pod-cidr', '--node-cidr-mask-size', '--data-dir']) {
      assert.match(stdout, new RegExp(`^  ${flag}`, 'm'));
    }
    assert.doesNotMatch(stdout, /READY/);
  });
});

describe('kubeconfigGiven', () => {
  test('a --kubeconfig flag or a non-empty KUBECONFIG selects the controller-manager', () => {
    assert.equal(kubeconfigGiven(['--kubeconfig', '/k'], {}), true);
    assert.equal(kubeconfigGiven(['--kubeconfig=/k'], {}), true);
    assert.equal(kubeconfigGiven([], { KUBECONFIG: '/k' }), true);
    assert.equal(kubeconfigGiven([], { KUBECONFIG: '' }), false);
    assert.equal(kubeconfigGiven(['--nodes', '2'], {}), false);
  });
});

describe('npm start without a kubeconfig', { skip: isRoot ? false : 'needs root and iproute2' }, () => {
  test("serves the seeds' demo end to end: ClusterIP allocated by the webhook, slices, agents", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'portico-start-'));
    const env = { ...process.env, KUBECONFIG: '' };
    const child = spawn(process.execPath, [startScript, '--data-dir', dataDir], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    try {
      const deadline = Date.now() + 90_000;
      while (!output.includes('READY\n')) {
        assert.ok(Date.now() < deadline, `no READY line: ${output}`);
        assert.equal(child.exitCode, null, `npm start exited: ${output}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const kubectl = (...args: string[]) =>
        run('kubectl', args, { env: { ...env, KUBECONFIG: join(dataDir, 'kubeconfig') }, timeout: 30_000 });
      await kubectl('apply', '-f', demo);
      let clusterIP = '';
      let reached = new Set<string>();
      const until = Date.now() + 60_000;
      while (reached.size < 4) {
        assert.ok(Date.now() < until, `reached only ${[...reached].join(', ')} via ${clusterIP}`);
        clusterIP = (await kubectl('get', 'svc', 'clusteripservice', '-o', 'jsonpath={.spec.clusterIP}'))
          .stdout;
        assert.match(clusterIP, /^198\.19\./, 'the webhook allocates from the local Service range');
        reached = new Set<string>();
        for (let i = 0; i < 15; i += 1) {
          const curl = await run(
            'ip',
            ['netns', 'exec', 'portico-local-client-0', 'curl', '-s', '-m', '2', `http://${clusterIP}:8080/`],
            { timeout: 10_000 },
          ).catch(() => ({ stdout: '' }));
          const host = /The host is (\S+)<\/p>/.exec(curl.stdout)?.[1];
          if (host !== undefined) reached.add(host);
        }
      }
      const slices = await kubectl(
        'get',
        'endpointslices',
        '-o',
        'jsonpath={.items[*].endpoints[*].addresses[0]}',
      );
      assert.equal(slices.stdout.trim().split(/\s+/).length, 4);
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGINT');
        await Promise.race([once(child, 'exit'), new Promise((resolve) => setTimeout(resolve, 30_000))]);
      }
      if (child.exitCode === null) child.kill('SIGKILL');
      await rm(dataDir, { recursive: true, force: true });
    }
    const left = (await run('ip', ['netns', 'list'])).stdout;
    assert.doesNotMatch(left, /portico-local-/, 'npm start removes its namespaces on SIGINT');
    assert.equal(child.exitCode, 0, output);
  });
});
