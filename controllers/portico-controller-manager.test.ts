import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CoordinationV1Api } from '@kubernetes/client-node';
import type { ApiServer } from '../e2e/apiserver/index.ts';
import {
  parseControllerManagerFlags,
  parseDuration,
  UsageError,
  usage,
} from './portico-controller-manager.ts';
import { freePort, kubeConfigFor, startTestApiServer, waitFor } from './runtime/testing/harness.ts';

const ENTRYPOINT = fileURLToPath(new URL('./portico-controller-manager.ts', import.meta.url));

describe('controller manager flags', () => {
  test('defaults follow kube-controller-manager and POD_NAMESPACE', () => {
    const config = parseControllerManagerFlags([], { POD_NAMESPACE: 'ops' });
    assert.notEqual(config, 'help');
    if (config === 'help') return;
    assert.equal(config.namespace, 'ops');
    assert.equal(config.leaderElect, true);
    assert.deepEqual(
      [config.leaseDurationMs, config.renewDeadlineMs, config.retryPeriodMs],
      [15_000, 10_000, 2_000],
    );
    assert.equal(config.leaderElectionId, 'portico-controller-manager');
    assert.deepEqual(config.healthAddress, { host: '', port: 8081 });
    assert.deepEqual(config.metricsAddress, { host: '', port: 8080 });
    assert.deepEqual(
      [
        config.maxEndpointsPerSlice,
        config.endpointUpdatesBatchPeriodMs,
        config.concurrentServiceEndpointSyncs,
      ],
      [100, 0, 5],
    );
    assert.equal(config.mirroringMaxEndpointsPerSubset, 1000);
    const fallback = parseControllerManagerFlags([], {});
    assert.equal(fallback !== 'help' && fallback.namespace, 'portico-system');
  });

  test('every flag is read, including --leader-elect=false', () => {
    const config = parseControllerManagerFlags(
      [
        '--kubeconfig=/tmp/kc',
        '--namespace',
        'kube-system',
        '--leader-elect=false',
        '--leader-elect-lease-duration=3s',
        '--leader-elect-renew-deadline=2s',
        '--leader-elect-retry-period=500ms',
        '--leader-election-id=portico-test',
        '--health-addr=127.0.0.1:9000',
        '--metrics-addr=[::1]:9001',
        '--log-level=debug',
        '--max-endpoints-per-slice=250',
        '--endpoint-updates-batch-period=500ms',
        '--concurrent-service-endpoint-syncs=10',
        '--mirroring-max-endpoints-per-subset=20',
      ],
      {},
    );
    assert.deepEqual(config, {
      kubeconfigPath: '/tmp/kc',
      namespace: 'kube-system',
      leaderElect: false,
      leaseDurationMs: 3_000,
      renewDeadlineMs: 2_000,
      retryPeriodMs: 500,
      leaderElectionId: 'portico-test',
      healthAddress: { host: '127.0.0.1', port: 9000 },
      metricsAddress: { host: '::1', port: 9001 },
      logLevel: 'debug',
      maxEndpointsPerSlice: 250,
      endpointUpdatesBatchPeriodMs: 500,
      concurrentServiceEndpointSyncs: 10,
      mirroringMaxEndpointsPerSubset: 20,
    });
  });

  test('Go-style durations parse; anything else is rejected with the flag name', () => {
    assert.equal(parseDuration('1m30s', '--x'), 90_000);
    assert.equal(parseDuration('1.5s', '--x'), 1_500);
    assert.equal(parseDuration('250ms', '--x'), 250);
    assert.throws(() => parseDuration('15', '--x'), /--x: Invalid value: "15": must be a duration/);
    assert.throws(() => parseDuration('', '--x'), UsageError);
  });

  test('bad values say what is wrong and what is allowed', () => {
    const cases: [string[], RegExp][] = [
      [['--health-addr=8081'], /--health-addr: Invalid value: "8081": must be host:port/],
      [['--metrics-addr=:70000'], /--metrics-addr: Invalid value: ":70000"/],
      [['--leader-elect=maybe'], /--leader-elect: Invalid value: "maybe": must be true or false/],
      [['--log-level=loud'], /--log-level: Unsupported value: "loud"/],
      [['--namespace=Bad_NS'], /--namespace: Invalid value: "Bad_NS": a lowercase RFC 1123 subdomain/],
      [
        ['--leader-elect-retry-period=20s'],
        /--leader-elect-retry-period: Invalid value: "20s": must be less than/,
      ],
      [
        ['--max-endpoints-per-slice=0'],
        /--max-endpoints-per-slice: Invalid value: 0: must not be less than 1/,
      ],
      [
        ['--max-endpoints-per-slice=1001'],
        /--max-endpoints-per-slice: Invalid value: 1001: must not be more than 1000/,
      ],
      [
        ['--max-endpoints-per-slice=many'],
        /--max-endpoints-per-slice: Invalid value: "many": must be an integer/,
      ],
      [['--endpoint-updates-batch-period=1'], /--endpoint-updates-batch-period: Invalid value: "1"/],
      [['--concurrent-service-endpoint-syncs=51'], /must not be more than 50/],
      [['--mirroring-max-endpoints-per-subset=0'], /--mirroring-max-endpoints-per-subset: Invalid value: 0/],
      [['--unknown'], /Unknown option '--unknown'/],
      [['stray'], /unexpected argument "stray"/],
    ];
    for (const [argv, message] of cases) {
      assert.throws(() => parseControllerManagerFlags(argv, {}), message, argv.join(' '));
    }
  });

  test('--help lists every flag', () => {
    assert.equal(parseControllerManagerFlags(['--help'], {}), 'help');
    for (const flag of [
      '--kubeconfig',
      '--namespace',
      '--leader-elect[',
      '--leader-elect-lease-duration',
      '--leader-elect-renew-deadline',
      '--leader-elect-retry-period',
      '--leader-election-id',
      '--health-addr',
      '--metrics-addr',
      '--log-level',
      '--max-endpoints-per-slice',
      '--endpoint-updates-batch-period',
      '--concurrent-service-endpoint-syncs',
      '--mirroring-max-endpoints-per-subset',
      '--help',
    ]) {
      assert.ok(usage().includes(flag), flag);
    }
  });

  test('the process exits 2 with the error on stderr for a bad flag', async () => {
    const child = spawn(process.execPath, [ENTRYPOINT, '--leader-elect-lease-duration=soon'], {
      stdio: 'pipe',
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [code] = await once(child, 'exit');
    assert.equal(code, 2);
    assert.match(stderr, /--leader-elect-lease-duration: Invalid value: "soon"/);
  });
});

/** One controller manager child process, with its identity (from its logs) and metrics port. */
interface ManagerProcess {
  child: ChildProcess;
  port: number;
  identity: string;
  exited: Promise<number | null>;
}

describe('controller manager processes electing a leader', () => {
  const leaseName = 'portico-e2e';
  const leaseDurationMs = 3_000;
  const retryPeriodMs = 500;
  let server: ApiServer;
  let coordination: CoordinationV1Api;
  const children: ChildProcess[] = [];

  before(async () => {
    server = await startTestApiServer();
    coordination = kubeConfigFor(server.kubeconfigPath).makeApiClient(CoordinationV1Api);
  });

  after(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await server?.close();
  });

  async function startManager(): Promise<ManagerProcess> {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        ENTRYPOINT,
        `--kubeconfig=${server.kubeconfigPath}`,
        '--namespace=default',
        `--leader-election-id=${leaseName}`,
        '--leader-elect-lease-duration=3s',
        '--leader-elect-renew-deadline=2s',
        '--leader-elect-retry-period=500ms',
        `--health-addr=127.0.0.1:${port}`,
        `--metrics-addr=127.0.0.1:${port}`,
        '--log-level=info',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    const exited = once(child, 'exit').then(([code]) => code as number | null);
    const identity = await new Promise<string>((resolve, reject) => {
      let buffered = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        for (const line of buffered.split('\n').slice(0, -1)) {
          const record = JSON.parse(line) as { message?: string; identity?: string };
          if (record.message === 'controller manager started' && record.identity) resolve(record.identity);
        }
        buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
      });
      void exited.then((code) => reject(new Error(`manager exited with ${code} before starting`)));
    });
    return { child, port, identity, exited };
  }

  async function leaderGauge(manager: ManagerProcess): Promise<number | undefined> {
    try {
      const response = await fetch(`http://127.0.0.1:${manager.port}/metrics`);
      const match = /^portico_leader_election_is_leader\{[^}]*\} (\d)$/m.exec(await response.text());
      return match ? Number(match[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  async function holder(): Promise<string> {
    try {
      const lease = await coordination.readNamespacedLease({ name: leaseName, namespace: 'default' });
      return lease.spec?.holderIdentity ?? '';
    } catch {
      return '';
    }
  }

  /** True when `leader` holds the lease and is the only one of `all` reporting itself leader. */
  async function leadsAlone(leader: ManagerProcess, all: ManagerProcess[]): Promise<boolean> {
    if ((await holder()) !== leader.identity) return false;
    const gauges = await Promise.all(all.map((manager) => leaderGauge(manager)));
    return gauges.every((value, i) => value === (all[i] === leader ? 1 : 0));
  }

  test('exactly one leads; SIGKILL hands over within the lease duration; SIGTERM within 2 s', async () => {
    const first = await startManager();
    const second = await startManager();
    const both = [first, second];
    await waitFor(async () => (await holder()) !== '', 'a leader', 10_000);
    const holderIdentity = await holder();
    const leader = both.find((m) => m.identity === holderIdentity);
    assert.ok(leader, `the lease holder ${holderIdentity} is one of the managers`);
    const standby = leader === first ? second : first;
    await waitFor(() => leadsAlone(leader, both), 'the leader to be the only one reporting leadership');
    const readyz = await fetch(`http://127.0.0.1:${standby.port}/readyz`);
    assert.equal(readyz.status, 200, 'a standby is ready too');

    leader.child.kill('SIGKILL');
    const killedAt = Date.now();
    await once(leader.child, 'exit');
    const lastRenewal = await coordination.readNamespacedLease({ name: leaseName, namespace: 'default' });
    // The client hands MicroTime fields over as the server's string.
    const lastRenewedAt = Date.parse(String(lastRenewal.spec?.renewTime));
    await waitFor(() => leadsAlone(standby, [standby]), 'the standby to take over', 10_000);
    const sigkillHandoverMs = Date.now() - killedAt;
    process.stdout.write(
      `# SIGKILL handover: ${sigkillHandoverMs} ms after the kill, ${Date.now() - lastRenewedAt} ms after the last renewal (lease ${leaseDurationMs} ms)\n`,
    );
    // Expiry is judged from when the standby saw the last renewal, up to one (jittered) retry period after it.
    assert.ok(sigkillHandoverMs < leaseDurationMs + 1.2 * retryPeriodMs + 300, `${sigkillHandoverMs} ms`);

    const third = await startManager();
    await waitFor(() => leadsAlone(standby, [standby, third]), 'the new standby to stay standby');
    standby.child.kill('SIGTERM');
    const terminatedAt = Date.now();
    await waitFor(() => leadsAlone(third, [third]), 'the third manager to take over', 5_000);
    const sigtermHandoverMs = Date.now() - terminatedAt;
    process.stdout.write(`# SIGTERM handover: ${sigtermHandoverMs} ms\n`);
    assert.ok(sigtermHandoverMs < 2_000, `${sigtermHandoverMs} ms`);
    assert.equal(await standby.exited, 0, 'a clean stop exits 0');

    third.child.kill('SIGTERM');
    assert.equal(await third.exited, 0);
    assert.equal(await holder(), '', 'the last manager released the lease');
  });
});
