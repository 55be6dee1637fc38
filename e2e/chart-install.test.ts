/**
 * The chart's LoadBalancerIPPool CRD on Portico's local API server, driven by a real kubectl: the
 * schema rejects malformed pools with field errors, defaults fill in, the status subresource takes
 * the controller's writes and `kubectl get lbpool` shows the printer columns.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ApiServer, startApiServer } from './apiserver/index.ts';
import { ensureKubectl, REPO_ROOT } from './tools/helm.ts';

const CRD_FILE = join(REPO_ROOT, 'charts', 'portico', 'crds', 'loadbalancerippools.portico.dev.yaml');

interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

describe('LoadBalancerIPPool CRD on the local API server', () => {
  let workDir: string;
  let server: ApiServer;
  let kubectlPath: string;

  function kubectl(args: string[], input?: string): Promise<KubectlResult> {
    return new Promise((resolve) => {
      const child = execFile(
        kubectlPath,
        ['--kubeconfig', server.kubeconfigPath, ...args],
        { env: { ...process.env, HOME: workDir } },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
      child.stdin?.end(input ?? '');
    });
  }

  async function mustKubectl(args: string[], input?: string): Promise<string> {
    const result = await kubectl(args, input);
    assert.equal(result.code, 0, `kubectl ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  }

  function pool(name: string, spec: Record<string, unknown>): string {
    return JSON.stringify({
      apiVersion: 'portico.dev/v1alpha1',
      kind: 'LoadBalancerIPPool',
      metadata: { name },
      spec,
    });
  }

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'portico-chart-crd-'));
    kubectlPath = await ensureKubectl();
    server = await startApiServer({ dataDir: join(workDir, 'server') });
    await mustKubectl(['create', '-f', CRD_FILE]);
    await server.controllersIdle();
  });

  after(async () => {
    await server?.close();
    await rm(workDir, { recursive: true, force: true });
  });

  test('kubectl knows the resource by its short name and category', async () => {
    const resources = await mustKubectl(['api-resources', '--api-group=portico.dev', '-o', 'wide']);
    assert.match(
      resources,
      /loadbalancerippools\s+lbpool\s+portico\.dev\/v1alpha1\s+false\s+LoadBalancerIPPool/,
    );
    assert.match(resources, /portico/);
  });

  test('a pool without addresses or with a negative priority is refused with field errors', async () => {
    const result = await kubectl(['create', '-f', '-'], pool('bad', { addresses: [], priority: -1 }));
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      /spec\.addresses: Invalid value: 0: spec\.addresses in body should have at least 1 items/,
    );
    assert.match(
      result.stderr,
      /spec\.priority: Invalid value: -1: spec\.priority in body should be greater than or equal to 0/,
    );
  });

  test('an operator with a typo is refused', async () => {
    const result = await kubectl(
      ['create', '-f', '-'],
      pool('typo', {
        addresses: ['198.18.20.0/28'],
        serviceSelector: { matchExpressions: [{ key: 'tier', operator: 'Within', values: ['web'] }] },
      }),
    );
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      /spec\.serviceSelector\.matchExpressions\[0\]\.operator: Unsupported value: "Within"/,
    );
  });

  test('a minimal pool gets the defaults, and status written through the subresource shows in kubectl get', async () => {
    await mustKubectl(
      ['create', '-f', '-'],
      pool('web', { addresses: ['198.18.10.0/28', '198.18.11.1-198.18.11.5'] }),
    );
    const stored = JSON.parse(await mustKubectl(['get', 'lbpool', 'web', '-o', 'json']));
    assert.deepEqual(stored.spec, {
      addresses: ['198.18.10.0/28', '198.18.11.1-198.18.11.5'],
      autoAssign: true,
      avoidBuggyIPs: false,
      priority: 0,
    });
    const status = {
      capacity: 21,
      allocated: 3,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'AddressesValid',
          message: 'all addresses parse and overlap no other pool',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    };
    await mustKubectl([
      'patch',
      'lbpool',
      'web',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status }),
    ]);
    const table = await mustKubectl(['get', 'lbpool', 'web']);
    const [header, row] = table.trim().split('\n');
    assert.deepEqual(header!.split(/\s{2,}/), [
      'NAME',
      'ADDRESSES',
      'AUTO ASSIGN',
      'PRIORITY',
      'ALLOCATED',
      'CAPACITY',
      'READY',
      'AGE',
    ]);
    // READY's column uses a JSONPath filter (conditions[?(@.type=="Ready")]), which the local API
    // server does not evaluate yet; kube-apiserver does. The columns before it are checked here.
    assert.match(
      row!,
      /^web\s+\["198\.18\.10\.0\/28","198\.18\.11\.1-198\.18\.11\.5"\]\s+true\s+0\s+3\s+21\s+/,
    );
  });

  test('a spec change through the main resource leaves status alone', async () => {
    await mustKubectl([
      'patch',
      'lbpool',
      'web',
      '--type=merge',
      '-p',
      '{"spec":{"priority":5},"status":{"allocated":0}}',
    ]);
    const stored = JSON.parse(await mustKubectl(['get', 'lbpool', 'web', '-o', 'json']));
    assert.equal(stored.spec.priority, 5);
    assert.equal(stored.status.allocated, 3);
  });
});
