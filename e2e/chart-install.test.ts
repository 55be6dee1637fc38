/**
 * Portico's chart on the local API server, driven by real helm and kubectl binaries: `helm install`
 * creates every object of the release (each one listed by `kubectl get`), `helm upgrade` keeps the
 * webhook CA it reads back with `lookup`, and `helm uninstall` removes everything but the CRD,
 * which helm keeps as upstream does. The CRD's schema, defaults, status subresource and printer
 * columns are checked through kubectl as well.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { type ApiServer, startApiServer } from './apiserver/index.ts';
import { ensureKubectl, type HelmResult, REPO_ROOT, runHelm } from './tools/helm.ts';

const CHART = join(REPO_ROOT, 'charts', 'portico');
const CRD_FILE = join(CHART, 'crds', 'loadbalancerippools.portico.dev.yaml');
const RELEASE_NAMESPACE = 'portico-system';

/** A kubectl bound to one server and a private HOME (so no user's kubectl cache is read or written). */
interface Kubectl {
  run(args: string[], input?: string): Promise<HelmResult>;
  must(args: string[], input?: string): Promise<string>;
}

async function kubectlFor(server: ApiServer, home: string): Promise<Kubectl> {
  const kubectlPath = await ensureKubectl();
  const run = (args: string[], input?: string): Promise<HelmResult> =>
    new Promise((resolve) => {
      const child = execFile(
        kubectlPath,
        ['--kubeconfig', server.kubeconfigPath, ...args],
        { env: { ...process.env, HOME: home } },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
      child.stdin?.end(input ?? '');
    });
  return {
    run,
    async must(args, input) {
      const result = await run(args, input);
      assert.equal(result.code, 0, `kubectl ${args.join(' ')}: ${result.stderr}`);
      return result.stdout;
    },
  };
}

describe('LoadBalancerIPPool CRD on the local API server', () => {
  let workDir: string;
  let server: ApiServer;
  let kubectlClient: Kubectl;
  const kubectl = (args: string[], input?: string) => kubectlClient.run(args, input);
  const mustKubectl = (args: string[], input?: string) => kubectlClient.must(args, input);

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
    server = await startApiServer({ dataDir: join(workDir, 'server') });
    kubectlClient = await kubectlFor(server, workDir);
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
    // READY's jsonPath is a filter (.status.conditions[?(@.type=="Ready")].status).
    assert.match(
      row!,
      /^web\s+\["198\.18\.10\.0\/28","198\.18\.11\.1-198\.18\.11\.5"\]\s+true\s+0\s+3\s+21\s+True\s+\d+s$/,
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

/** An object of the release as `helm get manifest` lists it. */
interface ReleaseObject {
  kind: string;
  metadata: { name: string; namespace?: string };
}

describe('helm install, upgrade and uninstall of the chart on the local API server', () => {
  let workDir: string;
  let server: ApiServer;
  let kubectl: Kubectl;

  function helm(args: string[]): Promise<HelmResult> {
    return runHelm([...args, '--kubeconfig', server.kubeconfigPath, '--namespace', RELEASE_NAMESPACE]);
  }

  async function mustHelm(args: string[]): Promise<string> {
    const result = await helm(args);
    assert.equal(result.code, 0, `helm ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  }

  function getArgs(object: ReleaseObject): string[] {
    const namespace = object.metadata.namespace ? ['-n', object.metadata.namespace] : [];
    return ['get', object.kind, object.metadata.name, ...namespace];
  }

  function webhookCA(): Promise<string> {
    return kubectl.must([
      '-n',
      RELEASE_NAMESPACE,
      'get',
      'secret',
      'portico-webhook-tls',
      '-o',
      'jsonpath={.data.ca\\.crt}',
    ]);
  }

  before(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'portico-chart-install-'));
    server = await startApiServer({ dataDir: join(workDir, 'server') });
    kubectl = await kubectlFor(server, workDir);
  });

  after(async () => {
    await server?.close();
    await rm(workDir, { recursive: true, force: true });
  });

  test('every object of the release is listed by kubectl, the CA survives an upgrade, and uninstall removes all but the CRD', async () => {
    await mustHelm(['install', 'portico', CHART, '--create-namespace']);
    const objects = parseAllDocuments(await mustHelm(['get', 'manifest', 'portico']))
      .map((document) => document.toJS() as ReleaseObject | null)
      .filter((object) => object !== null);
    assert.deepEqual([...new Set(objects.map((o) => o.kind))].sort(), [
      'ClusterRole',
      'ClusterRoleBinding',
      'DaemonSet',
      'Deployment',
      'MutatingWebhookConfiguration',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Secret',
      'Service',
      'ServiceAccount',
      'ValidatingWebhookConfiguration',
    ]);
    for (const object of objects) {
      const printed = await kubectl.must(getArgs(object));
      assert.match(printed, new RegExp(`^${object.metadata.name}\\s`, 'm'), `${object.kind} row`);
    }
    assert.match(
      await kubectl.must(['-n', RELEASE_NAMESPACE, 'get', 'daemonset', 'portico-agent', '-o', 'wide']),
      /^NAME\s+DESIRED\s+CURRENT\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+NODE SELECTOR\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR\n/,
    );
    assert.match(
      await kubectl.must(['-n', RELEASE_NAMESPACE, 'get', 'pdb', 'portico-controller-manager']),
      /^NAME\s+MIN AVAILABLE\s+MAX UNAVAILABLE\s+ALLOWED DISRUPTIONS\s+AGE\nportico-controller-manager\s+\S+\s+\S+\s+0\s+/,
    );
    assert.match(
      await kubectl.must(['get', 'clusterrolebinding', 'portico-agent', '-o', 'wide']),
      /portico-agent\s+ClusterRole\/portico-agent\s+\S+\s+portico-system\/portico-agent/,
    );
    const crd = await kubectl.must(['get', 'crd', 'loadbalancerippools.portico.dev']);
    assert.match(crd, /^loadbalancerippools\.portico\.dev\s/m);

    const caBefore = await webhookCA();
    assert.notEqual(caBefore, '');
    await mustHelm(['upgrade', 'portico', CHART, '--set', 'agent.mode=nftables']);
    const agentArgs = await kubectl.must([
      '-n',
      RELEASE_NAMESPACE,
      'get',
      'daemonset',
      'portico-agent',
      '-o',
      'jsonpath={.spec.template.spec.containers[0].args}',
    ]);
    assert.match(agentArgs, /--mode=nftables/);
    assert.equal(await webhookCA(), caBefore);
    for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
      const bundle = await kubectl.must([
        'get',
        kind,
        'portico-webhook',
        '-o',
        'jsonpath={.webhooks[*].clientConfig.caBundle}',
      ]);
      for (const each of bundle.split(' ')) assert.equal(each, caBefore, `${kind} caBundle`);
    }

    await mustHelm(['uninstall', 'portico', '--wait']);
    await server.controllersIdle();
    for (const object of objects) {
      const result = await kubectl.run(getArgs(object));
      assert.notEqual(result.code, 0, `${object.kind} ${object.metadata.name} survived helm uninstall`);
      assert.match(result.stderr, /NotFound/);
    }
    const status = await helm(['status', 'portico']);
    assert.notEqual(status.code, 0);
    assert.match(status.stderr, /release: not found/);
    assert.equal(
      await kubectl.must(['-n', RELEASE_NAMESPACE, 'get', 'secrets', '-l', 'owner=helm', '-o', 'name']),
      '',
    );
    // helm never deletes what it installed from crds/, so the pools users made outlive the release.
    assert.match(await kubectl.must(['get', 'crd', 'loadbalancerippools.portico.dev']), /portico\.dev/);
  });

  test('helm validates against the server without --disable-openapi-validation: an unknown field fails the install', async () => {
    const chart = join(workDir, 'typo-chart');
    await mkdir(join(chart, 'templates'), { recursive: true });
    await writeFile(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: typo\nversion: 0.1.0\n');
    const agent = {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'typo-agent' },
      spec: {
        selector: { matchLabels: { app: 'typo' } },
        template: {
          metadata: { labels: { app: 'typo' } },
          spec: { containers: [{ name: 'agent', image: 'portico/agent:1', imagePullPolcy: 'Always' }] },
        },
      },
    };
    await writeFile(join(chart, 'templates', 'agent.yaml'), JSON.stringify(agent));
    const install = await helm(['install', 'typo', chart]);
    assert.notEqual(install.code, 0);
    assert.match(
      install.stderr,
      /DaemonSet in version "v1" cannot be handled as a DaemonSet: strict decoding error: unknown field "spec\.template\.spec\.containers\[0\]\.imagePullPolcy"/,
    );
    const result = await kubectl.run(['-n', RELEASE_NAMESPACE, 'get', 'daemonset', 'typo-agent']);
    assert.match(result.stderr, /NotFound/);
  });
});
