import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import type { ApiServer } from '../../e2e/apiserver/index.ts';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueServingCertificate,
} from '../../webhooks/certificates.ts';
import { testServiceAllocators } from '../../webhooks/testing/services.ts';
import { DEFAULT_REPAIR_INTERVAL_MS } from '../allocator-repair/controller.ts';
import { kubeJsonClient } from '../runtime/kube.ts';
import { freePort, kubeConfigFor, startTestApiServer, waitFor } from '../runtime/testing/harness.ts';
import { parseServiceAllocationFlags } from './flags.ts';

const ENTRYPOINT = new URL('../portico-controller-manager.ts', import.meta.url).pathname;

describe('Service allocation flags', () => {
  test('defaults: 198.19.0.0/16, 30000-32767, :9443, no TLS, 3m repair interval', () => {
    const config = parseServiceAllocationFlags(['--leader-elect=false', '--namespace', 'x']);
    assert.deepEqual(
      config.serviceCIDRs.map((range) => range.spec),
      ['198.19.0.0/16'],
    );
    assert.equal(config.nodePortRange.spec, '30000-32767');
    assert.deepEqual(config.webhookAddress, { host: '', port: 9443 });
    assert.equal(config.tls, undefined);
    assert.equal(config.repairIntervalMs, DEFAULT_REPAIR_INTERVAL_MS);
  });

  test('every flag is read; two CIDRs make a dual-stack configuration', () => {
    const config = parseServiceAllocationFlags([
      '--service-cluster-ip-range=198.19.0.0/20,fd00:19::/108',
      '--service-node-port-range',
      '31000-31999',
      '--webhook-addr=127.0.0.1:8443',
      '--tls-cert-file=/tls/tls.crt',
      '--tls-key-file=/tls/tls.key',
      '--allocator-repair-interval=1m30s',
    ]);
    assert.deepEqual(
      config.serviceCIDRs.map((range) => range.kind),
      ['IPv4', 'IPv6'],
    );
    assert.equal(config.nodePortRange.spec, '31000-31999');
    assert.deepEqual(config.webhookAddress, { host: '127.0.0.1', port: 8443 });
    assert.deepEqual(config.tls, { certFile: '/tls/tls.crt', keyFile: '/tls/tls.key' });
    assert.equal(config.repairIntervalMs, 90_000);
  });

  test('bad values name the flag and what is allowed', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--service-cluster-ip-range=10.0.0.0/8'], /for 32-bit addresses, the mask must be >= 12/],
      [['--service-cluster-ip-range=10.0.0.0/16,10.1.0.0/16'], /must be of different IP family/],
      [['--service-node-port-range=30000-70000'], /--service-node-port-range: Invalid value: "30000-70000"/],
      [['--webhook-addr=9443'], /--webhook-addr: Invalid value: "9443": must be host:port/],
      [['--tls-cert-file=/a'], /give both or neither/],
      [
        ['--allocator-repair-interval=0s'],
        /--allocator-repair-interval: Invalid value: "0s": must be a positive duration/,
      ],
    ];
    for (const [argv, message] of cases)
      assert.throws(() => parseServiceAllocationFlags(argv), message, argv.join(' '));
  });
});

describe('portico-controller-manager with Service allocation', () => {
  let apiServer: ApiServer;
  let directory: string;
  let ca: CertificateAuthority;
  const children: ChildProcess[] = [];

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'portico-allocation-flags-'));
    apiServer = await startTestApiServer();
    const core = kubeConfigFor(apiServer.kubeconfigPath).makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'portico-system' } } });
    ca = await createCertificateAuthority(directory, 'portico-flags-ca');
    await issueServingCertificate(
      ca,
      'portico-webhook',
      ['IP:127.0.0.1'],
      join(directory, 'tls.crt'),
      join(directory, 'tls.key'),
    );
  });

  after(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await apiServer?.close();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  function start(extra: string[]): { child: ChildProcess; output: () => string } {
    const child = spawn(
      process.execPath,
      [
        ENTRYPOINT,
        `--kubeconfig=${apiServer.kubeconfigPath}`,
        '--namespace=portico-system',
        '--leader-elect=false',
        '--health-addr=127.0.0.1:0',
        '--metrics-addr=127.0.0.1:0',
        ...extra,
      ],
      { stdio: 'pipe' },
    );
    children.push(child);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    return { child, output: () => output };
  }

  test('serves the webhooks on --webhook-addr with the given certificate, ready once the cache synced', async () => {
    const port = await freePort();
    const { child, output } = start([
      `--webhook-addr=127.0.0.1:${port}`,
      `--tls-cert-file=${join(directory, 'tls.crt')}`,
      `--tls-key-file=${join(directory, 'tls.key')}`,
    ]);
    const readyz = () =>
      new Promise<number>((resolve) => {
        const req = request(
          { host: '127.0.0.1', port, path: '/readyz', ca: ca.caPem, agent: false },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', () => resolve(0));
        req.end();
      });
    await waitFor(
      async () => (await readyz()) === 200,
      `webhook /readyz (output: ${output().slice(-500)})`,
      30_000,
    );
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
  });

  test('refuses to start when the stored ConfigMap belongs to another range', async () => {
    const api = kubeJsonClient(kubeConfigFor(apiServer.kubeconfigPath));
    const stored = testServiceAllocators(api, 'portico-system');
    await stored.clusterIP('IPv4')!.store.allocateNext();
    api.close();
    const { child, output } = start(['--service-cluster-ip-range=198.19.0.0/24']);
    const [code] = await once(child, 'exit');
    assert.equal(code, 1);
    assert.match(
      output(),
      /ConfigMap portico-system\/portico-clusterip-ipv4 holds IPv4 allocations for range 198\.19\.0\.0\/16, but the configured IPv4 range is 198\.19\.0\.0\/24; refusing to change it/,
    );
  });
});
