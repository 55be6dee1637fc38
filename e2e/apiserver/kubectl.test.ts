/**
 * Acceptance: the real kubectl (/usr/bin/kubectl, default `--validate=strict`) against the local
 * API server, over the manifests in examples/ (the seeds' Services, Deployments, Pods and Endpoints).
 *
 * Every kubectl runs as a child process with a timeout while the server runs in this process, so
 * calls are asynchronous (a synchronous spawn would block the server it talks to).
 */

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { type ApiServer, startApiServer } from './index.ts';
import { ensureServingCertificates } from './tls.ts';

const KUBECTL = '/usr/bin/kubectl';
const KUBECTL_TIMEOUT_MS = 30_000;
const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;

interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface Manifest {
  file: string;
  kind: string;
  name: string;
  namespace: string | undefined;
  document: Record<string, unknown>;
}

/** One examples/ folder and the namespace its manifests go to. */
interface Example {
  folder: string;
  manifests: Manifest[];
  /** The namespace the manifests name themselves, or the folder's own (created by the test). */
  namespace: string;
  namesOwnNamespace: boolean;
}

function loadExamples(): Example[] {
  return readdirSync(EXAMPLES, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => {
      const folder = entry.name;
      const manifests = readdirSync(join(EXAMPLES, folder))
        .filter((file) => file.endsWith('.yaml'))
        .sort()
        .flatMap((file) =>
          parseAllDocuments(readFileSync(join(EXAMPLES, folder, file), 'utf8')).map((doc) => {
            const document = doc.toJS() as Record<string, unknown>;
            const metadata = document.metadata as { name: string; namespace?: string };
            return {
              file,
              kind: String(document.kind),
              name: metadata.name,
              namespace: metadata.namespace,
              document,
            };
          }),
        );
      const own = manifests.find((m) => m.namespace !== undefined)?.namespace;
      return { folder, manifests, namespace: own ?? folder, namesOwnNamespace: own !== undefined };
    });
}

/** Asserts that `actual` has every field of `expected` (the server may add defaults). */
function assertContains(actual: unknown, expected: unknown, where: string): void {
  if (Array.isArray(expected)) {
    assert.ok(
      Array.isArray(actual) && actual.length === expected.length,
      `${where}: ${JSON.stringify(actual)}`,
    );
    for (const [i, item] of expected.entries()) assertContains(actual[i], item, `${where}[${i}]`);
  } else if (typeof expected === 'object' && expected !== null) {
    assert.ok(typeof actual === 'object' && actual !== null, `${where}: ${JSON.stringify(actual)}`);
    for (const [key, value] of Object.entries(expected)) {
      assertContains((actual as Record<string, unknown>)[key], value, `${where}.${key}`);
    }
  } else {
    assert.equal(actual, expected, where);
  }
}

/** The environment of every kubectl: the server's kubeconfig and a private discovery cache. */
function kubectlEnv(server: ApiServer, workDir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: workDir,
    KUBECONFIG: server.kubeconfigPath,
    KUBECACHEDIR: join(workDir, 'cache'),
  };
}

function runKubectl(env: NodeJS.ProcessEnv, args: readonly string[], stdin?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      KUBECTL,
      [...args],
      { env, timeout: KUBECTL_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({
          code,
          stdout,
          stderr: error?.killed ? `${stderr}\n(killed after ${KUBECTL_TIMEOUT_MS} ms)` : stderr,
        });
      },
    );
    child.stdin?.end(stdin);
  });
}

/** Runs kubectl and fails the test with its output unless it exits 0. */
async function kubectlOk(env: NodeJS.ProcessEnv, args: readonly string[], stdin?: string): Promise<string> {
  const result = await runKubectl(env, args, stdin);
  assert.equal(result.code, 0, `kubectl ${args.join(' ')} failed:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

function kubectlResource(kind: string): string {
  return kind.toLowerCase() === 'deployment' ? 'deployment.apps' : kind.toLowerCase();
}

describe('kubectl against the local API server', () => {
  let server: ApiServer;
  let workDir = '';
  const examples = loadExamples();
  const running = new Set<ReturnType<typeof spawn>>();

  const env = (): NodeJS.ProcessEnv => kubectlEnv(server, workDir);
  const kubectl = (args: readonly string[], stdin?: string): Promise<KubectlResult> =>
    runKubectl(env(), args, stdin);
  const ok = (args: readonly string[], stdin?: string): Promise<string> => kubectlOk(env(), args, stdin);

  async function getJson(
    namespace: string,
    resource: string,
    name: string,
  ): Promise<Record<string, unknown>> {
    return JSON.parse(await ok(['get', '-n', namespace, resource, name, '-o', 'json'])) as Record<
      string,
      unknown
    >;
  }

  function example(folder: string): Example {
    const found = examples.find((e) => e.folder === folder);
    assert.ok(found, `examples/${folder} exists`);
    return found;
  }

  /** `-n <ns>` unless the manifests name their namespace (kubectl refuses a different -n then). */
  function namespaceArgs(e: Example): string[] {
    return e.namesOwnNamespace ? [] : ['-n', e.namespace];
  }

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'portico-kubectl-test-'));
    server = await startApiServer({ dataDir: join(workDir, 'server') });
  });

  after(async () => {
    for (const child of running) child.kill('SIGKILL');
    await server?.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('the examples cover every Service, Deployment, Pod and Endpoints of the seeds', () => {
    const kinds = examples.flatMap((e) => e.manifests.map((m) => m.kind));
    assert.equal(kinds.filter((k) => k === 'Service').length, 9);
    assert.equal(kinds.filter((k) => k === 'Deployment').length, 1);
    assert.equal(kinds.filter((k) => k === 'Pod').length, 1);
    assert.equal(kinds.filter((k) => k === 'Endpoints').length, 1);
  });

  test('apply -f creates every examples/ manifest, with validation on', async () => {
    for (const e of examples) {
      if (!e.namesOwnNamespace) {
        const namespace = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${e.namespace}\n`;
        await ok(['create', '-f', '-'], namespace);
      }
      const out = await ok(['apply', ...namespaceArgs(e), '-f', join(EXAMPLES, e.folder)]);
      for (const m of e.manifests) {
        assert.match(
          out,
          new RegExp(`^${kubectlResource(m.kind)}/${m.name} created$`, 'm'),
          `${e.folder}/${m.file}`,
        );
        if (m.kind === 'Namespace') continue;
        const stored = await getJson(e.namespace, m.kind.toLowerCase(), m.name);
        assert.equal(stored.kind, m.kind);
        const field = m.kind === 'Endpoints' ? 'subsets' : 'spec';
        assertContains(stored[field], m.document[field], `${e.folder}/${m.file} ${field}`);
      }
    }
  });

  test('apply again changes nothing and says unchanged', async () => {
    for (const e of examples) {
      const before = await ok([
        'get',
        '-n',
        e.namespace,
        'services,endpoints',
        '-o',
        'jsonpath={.items[*].metadata.resourceVersion}',
      ]);
      const out = await ok(['apply', ...namespaceArgs(e), '-f', join(EXAMPLES, e.folder)]);
      for (const m of e.manifests) {
        // A manifest carrying status (the LoadBalancer example) always yields a non-empty patch, so
        // kubectl says "configured", as against kube-apiserver; the server ignores status on the main
        // resource and writes nothing, which the resourceVersions below show.
        // Likewise an Endpoints port without protocol: `subsets[].ports` is an atomic list, the
        // server stores it with protocol TCP, and kubectl's three-way merge then differs from it.
        const defaultedAtomicList =
          m.kind === 'Endpoints' &&
          JSON.stringify(m.document.subsets ?? []).includes('"port"') &&
          !JSON.stringify(m.document.subsets ?? []).includes('"protocol"');
        const said = m.document.status === undefined && !defaultedAtomicList ? 'unchanged' : 'configured';
        assert.match(
          out,
          new RegExp(`^${kubectlResource(m.kind)}/${m.name} ${said}$`, 'm'),
          `${e.folder}/${m.file}`,
        );
      }
      const after = await ok([
        'get',
        '-n',
        e.namespace,
        'services,endpoints',
        '-o',
        'jsonpath={.items[*].metadata.resourceVersion}',
      ]);
      assert.equal(after, before, `${e.folder}: no object was written`);
    }
  });

  test('an edited re-apply changes a field and removes a field', async () => {
    const deployment = example('clusterip-demo').manifests.find((m) => m.kind === 'Deployment');
    assert.ok(deployment);
    const edited = readFileSync(join(EXAMPLES, 'clusterip-demo', deployment.file), 'utf8')
      .replace('replicas: 3', 'replicas: 2')
      .replace(/^\s+command: .*\n/m, '');
    assert.notEqual(edited, readFileSync(join(EXAMPLES, 'clusterip-demo', deployment.file), 'utf8'));
    const out = await ok(['apply', '-n', 'clusterip-demo', '-f', '-'], edited);
    assert.match(out, /^deployment\.apps\/exampleservice configured$/m);
    const stored = await getJson('clusterip-demo', 'deployment', 'exampleservice');
    const spec = stored.spec as {
      replicas: number;
      template: { spec: { containers: Record<string, unknown>[] } };
    };
    assert.equal(spec.replicas, 2);
    const container = spec.template.spec.containers[0]!;
    assert.equal(container.command, undefined, 'the removed field is gone');
    assert.deepEqual(container.args, [
      'echo "<p>The host is $(hostname)</p>" > index.html; python -m http.server 80',
    ]);
    assert.equal((stored.metadata as { generation: number }).generation, 2);
  });

  test('get -o wide prints the upstream columns', async () => {
    const services = await ok(['get', 'services', '-A', '-o', 'wide']);
    const header = services.split('\n')[0]!.split(/\s{2,}/);
    assert.deepEqual(header, [
      'NAMESPACE',
      'NAME',
      'TYPE',
      'CLUSTER-IP',
      'EXTERNAL-IP',
      'PORT(S)',
      'AGE',
      'SELECTOR',
    ]);
    const row = (namespace: string, name: string): string[] => {
      const line = services
        .split('\n')
        .find((l) => l.startsWith(`${namespace} `) && l.split(/\s+/)[1] === name);
      assert.ok(line, `${namespace}/${name} is listed`);
      return line.split(/\s+/);
    };
    assert.deepEqual(row('clusterip-demo', 'clusteripservice').slice(2, 6), [
      'ClusterIP',
      '<none>',
      '<none>',
      '8080/TCP',
    ]);
    assert.equal(row('clusterip-demo', 'clusteripservice')[7], 'example=forservice');
    assert.deepEqual(row('nodeport-demo', 'demo').slice(2, 6), [
      'NodePort',
      '<none>',
      '<none>',
      '80:30080/TCP',
    ]);
    assert.deepEqual(row('loadbalancer-service', 'my-service').slice(2, 6), [
      'LoadBalancer',
      '10.0.171.239',
      '<pending>',
      '80/TCP',
    ]);
    assert.deepEqual(row('prod', 'my-service').slice(2, 6), [
      'ExternalName',
      '<none>',
      'my.database.example.com',
      '<none>',
    ]);
    assert.deepEqual(row('external-ips-service', 'my-service').slice(3, 5), ['<none>', '80.11.12.10']);
    assert.equal(row('multi-port-service', 'my-service')[5], '80/TCP,443/TCP');

    const pods = await ok(['get', 'pods', '-n', 'clusterip-demo', '-o', 'wide']);
    assert.deepEqual(pods.split('\n')[0]!.split(/\s{2,}/), [
      'NAME',
      'READY',
      'STATUS',
      'RESTARTS',
      'AGE',
      'IP',
      'NODE',
      'NOMINATED NODE',
      'READINESS GATES',
    ]);
    assert.match(pods, /^examplepod\s+0\/1\s/m);
    const deployments = await ok(['get', 'deployments', '-n', 'clusterip-demo', '-o', 'wide']);
    assert.deepEqual(deployments.split('\n')[0]!.split(/\s{2,}/), [
      'NAME',
      'READY',
      'UP-TO-DATE',
      'AVAILABLE',
      'AGE',
      'CONTAINERS',
      'IMAGES',
      'SELECTOR',
    ]);
    assert.match(
      deployments,
      /^exampleservice\s+0\/2\s+0\s+0\s+\S+\s+pythonservice\s+python:3\.7\s+example=forservice$/m,
    );
    const endpoints = await ok(['get', 'endpoints', '-n', 'selectorless-service']);
    assert.match(endpoints, /^NAME\s+ENDPOINTS\s+AGE$/m);
    assert.match(endpoints, /^my-service\s+192\.0\.2\.42:9376\s/m);
  });

  test('get -o yaml returns the stored object', async () => {
    const out = await ok(['get', 'service', 'clusteripservice', '-n', 'clusterip-demo', '-o', 'yaml']);
    const object = parseYaml(out) as {
      apiVersion: string;
      kind: string;
      metadata: { name: string; uid: string; resourceVersion: string; annotations: Record<string, string> };
      spec: { selector: Record<string, string>; ports: { port: number; targetPort: number }[] };
    };
    assert.equal(object.apiVersion, 'v1');
    assert.equal(object.kind, 'Service');
    assert.equal(object.metadata.name, 'clusteripservice');
    assert.match(object.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.match(object.metadata.resourceVersion, /^\d+$/);
    assert.ok(object.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
    assert.deepEqual(object.spec.selector, { example: 'forservice' });
    assert.equal(object.spec.ports[0]!.targetPort, 80);
  });

  test('describe prints the Service', async () => {
    const out = await ok(['describe', 'service', 'clusteripservice', '-n', 'clusterip-demo']);
    assert.match(out, /^Name:\s+clusteripservice$/m);
    assert.match(out, /^Namespace:\s+clusterip-demo$/m);
    assert.match(out, /^Selector:\s+example=forservice$/m);
    assert.match(out, /^Type:\s+ClusterIP$/m);
    assert.match(out, /^Port:\s+<unset>\s+8080\/TCP$/m);
    assert.match(out, /^TargetPort:\s+80\/TCP$/m);
    const deployment = await ok(['describe', 'deployment', 'exampleservice', '-n', 'clusterip-demo']);
    assert.match(deployment, /^Replicas:\s+2 desired/m);
  });

  test('explain reads the OpenAPI v3 documents', async () => {
    const out = await ok(['explain', 'service.spec']);
    assert.match(out, /^KIND:\s+Service$/m);
    assert.match(out, /^VERSION:\s+v1$/m);
    assert.match(out, /^FIELD: spec <ServiceSpec>$/m);
    assert.match(out, /^ {2}ports\t<\[\]ServicePort>$/m);
    assert.match(
      await ok(['explain', 'service.spec.ports.targetPort']),
      /^FIELD: targetPort <(IntOrString|string)>$/m,
    );
    assert.match(await ok(['explain', 'deployments.spec']), /^KIND:\s+Deployment$/m);
  });

  test('get --watch receives a change', async () => {
    const child = spawn(KUBECTL, ['get', 'services', '-n', 'nodeport-demo', '--watch'], { env: env() });
    running.add(child);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    const waitFor = async (pattern: RegExp, what: string): Promise<void> => {
      const deadline = Date.now() + KUBECTL_TIMEOUT_MS;
      while (!pattern.test(output)) {
        assert.ok(Date.now() < deadline, `timed out waiting for ${what}; kubectl printed:\n${output}`);
        assert.equal(child.exitCode, null, `kubectl --watch exited early:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    try {
      await waitFor(/^demo\s+NodePort\s.*80:30080\/TCP/m, 'the initial row');
      await ok([
        'patch',
        'service',
        'demo',
        '-n',
        'nodeport-demo',
        '--type',
        'merge',
        '-p',
        '{"spec":{"ports":[{"name":"http","port":8080,"targetPort":80,"protocol":"TCP","nodePort":30080}]}}',
      ]);
      await waitFor(/^demo\s+NodePort\s.*8080:30080\/TCP/m, 'the changed row');
    } finally {
      child.kill('SIGKILL');
      running.delete(child);
    }
  });

  test('label and annotate', async () => {
    assert.match(
      await ok(['label', 'service', 'clusteripservice', '-n', 'clusterip-demo', 'tier=web']),
      /^service\/clusteripservice labeled$/m,
    );
    assert.match(
      await ok([
        'annotate',
        'service',
        'clusteripservice',
        '-n',
        'clusterip-demo',
        'portico.dev/owner=team-a',
      ]),
      /^service\/clusteripservice annotated$/m,
    );
    let metadata = (await getJson('clusterip-demo', 'service', 'clusteripservice')).metadata as {
      labels: Record<string, string>;
      annotations: Record<string, string>;
    };
    assert.equal(metadata.labels.tier, 'web');
    assert.equal(metadata.annotations['portico.dev/owner'], 'team-a');
    const overwrite = await kubectl([
      'label',
      'service',
      'clusteripservice',
      '-n',
      'clusterip-demo',
      'tier=db',
    ]);
    assert.notEqual(overwrite.code, 0, 'changing a label needs --overwrite');
    assert.match(overwrite.stderr, /'tier' already has a value \(web\), and --overwrite is false/);
    await ok(['label', 'service', 'clusteripservice', '-n', 'clusterip-demo', 'tier-']);
    metadata = (await getJson('clusterip-demo', 'service', 'clusteripservice')).metadata as typeof metadata;
    assert.equal(metadata.labels?.tier, undefined);
    const bad = await kubectl([
      'label',
      'service',
      'clusteripservice',
      '-n',
      'clusterip-demo',
      'bad/key/x=1',
    ]);
    assert.notEqual(bad.code, 0);
  });

  test('patch --type strategic merges ports by their port number', async () => {
    const out = await ok([
      'patch',
      'service',
      'my-service',
      '-n',
      'multi-port-service',
      '--type',
      'strategic',
      '-p',
      '{"spec":{"ports":[{"port":443,"targetPort":9443}]}}',
    ]);
    assert.match(out, /^service\/my-service patched$/m);
    const spec = (await getJson('multi-port-service', 'service', 'my-service')).spec as {
      ports: { name: string; port: number; targetPort: number }[];
    };
    assert.deepEqual(
      spec.ports.map((p) => [p.name, p.port, p.targetPort]),
      [
        ['http', 80, 9376],
        ['https', 443, 9443],
      ],
    );
  });

  test('patch --type merge and --type json', async () => {
    await ok([
      'patch',
      'service',
      'my-service',
      '-n',
      'my-service',
      '--type',
      'merge',
      '-p',
      '{"metadata":{"labels":{"patched":"merge"}},"spec":{"sessionAffinity":"ClientIP"}}',
    ]);
    await ok([
      'patch',
      'service',
      'my-service',
      '-n',
      'my-service',
      '--type',
      'json',
      '-p',
      '[{"op":"replace","path":"/spec/ports/0/targetPort","value":9080}]',
    ]);
    const stored = await getJson('my-service', 'service', 'my-service');
    assert.deepEqual((stored.metadata as { labels: unknown }).labels, { patched: 'merge' });
    const spec = stored.spec as { sessionAffinity: string; ports: { targetPort: number }[] };
    assert.equal(spec.sessionAffinity, 'ClientIP');
    assert.equal(spec.ports[0]!.targetPort, 9080);
    const failed = await kubectl([
      'patch',
      'service',
      'my-service',
      '-n',
      'my-service',
      '--type',
      'json',
      '-p',
      '[{"op":"test","path":"/spec/sessionAffinity","value":"None"}]',
    ]);
    assert.notEqual(failed.code, 0, 'a failing JSON patch test operation is refused');
  });

  test('create of a duplicate says AlreadyExists', async () => {
    const result = await kubectl([
      'create',
      '-n',
      'clusterip-demo',
      '-f',
      join(EXAMPLES, 'clusterip-demo', 'service.yaml'),
    ]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^Error from server \(AlreadyExists\): error when creating ".*service\.yaml": services "clusteripservice" already exists$/m,
    );
  });

  test('apply --dry-run=server validates and admits but stores nothing', async () => {
    const fresh = 'apiVersion: v1\nkind: Service\nmetadata:\n  name: dry\nspec:\n  ports:\n  - port: 80\n';
    assert.match(
      await ok(['apply', '-n', 'my-service', '--dry-run=server', '-f', '-'], fresh),
      /^service\/dry created \(server dry run\)$/m,
    );
    const missing = await kubectl(['get', 'service', 'dry', '-n', 'my-service']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /services "dry" not found/);
    const before = await getJson('clusterip-demo', 'service', 'clusteripservice');
    const changed = readFileSync(join(EXAMPLES, 'clusterip-demo', 'service.yaml'), 'utf8').replace(
      'example: forservice',
      'example: other',
    );
    assert.match(
      await ok(['apply', '-n', 'clusterip-demo', '--dry-run=server', '-f', '-'], changed),
      /^service\/clusteripservice configured \(server dry run\)$/m,
    );
    assert.deepEqual(await getJson('clusterip-demo', 'service', 'clusteripservice'), before);
    const invalid = fresh.replace('port: 80', 'port: 70000');
    const refused = await kubectl(['apply', '-n', 'my-service', '--dry-run=server', '-f', '-'], invalid);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /spec\.ports\[0\]\.port: Invalid value: 70000/);
  });

  test('apply --server-side is idempotent and removes a field dropped from the manifest', async () => {
    const manifest = (labels: string): string =>
      `apiVersion: v1\nkind: Service\nmetadata:\n  name: ssa\n${labels}spec:\n  selector:\n    app: ssa\n  ports:\n  - name: http\n    port: 80\n`;
    const labelled = manifest('  labels:\n    stage: beta\n');
    assert.match(
      await ok(['apply', '--server-side', '-n', 'my-service', '-f', '-'], labelled),
      /^service\/ssa serverside-applied$/m,
    );
    const first = await getJson('my-service', 'service', 'ssa');
    assert.deepEqual((first.metadata as { labels: unknown }).labels, { stage: 'beta' });
    await ok(['apply', '--server-side', '-n', 'my-service', '-f', '-'], labelled);
    const second = await getJson('my-service', 'service', 'ssa');
    assert.equal(
      (second.metadata as { resourceVersion: string }).resourceVersion,
      (first.metadata as { resourceVersion: string }).resourceVersion,
      're-applying the same manifest writes nothing',
    );
    await ok(['apply', '--server-side', '-n', 'my-service', '-f', '-'], manifest(''));
    const third = await getJson('my-service', 'service', 'ssa');
    assert.equal((third.metadata as { labels?: Record<string, string> }).labels?.stage, undefined);
    const demo = example('clusterip-demo');
    const out = await ok([
      'apply',
      '--server-side',
      '--force-conflicts',
      '-n',
      demo.namespace,
      '-f',
      join(EXAMPLES, demo.folder),
    ]);
    assert.match(out, /^service\/clusteripservice serverside-applied$/m);
  });

  test('custom resources: printer columns, explain, apply and re-apply', async () => {
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.com' },
      spec: {
        group: 'example.com',
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            subresources: { status: {} },
            additionalPrinterColumns: [
              { name: 'Size', type: 'integer', jsonPath: '.spec.size' },
              { name: 'Color', type: 'string', jsonPath: '.spec.color', priority: 1 },
              { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
            ],
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: {
                    type: 'object',
                    description: 'What the widget should be.',
                    properties: {
                      size: { type: 'integer', description: 'How big.' },
                      color: { type: 'string' },
                    },
                  },
                },
              },
            },
          },
        ],
      },
    };
    await ok(['apply', '-f', '-'], JSON.stringify(crd));
    await ok(['wait', '--for=condition=Established', 'crd/widgets.example.com', '--timeout=20s']);
    const widget =
      'apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n  color: red\n';
    assert.match(
      await ok(['apply', '-n', 'default', '-f', '-'], widget),
      /^widget\.example\.com\/w1 created$/m,
    );
    assert.match(
      await ok(['apply', '-n', 'default', '-f', '-'], widget),
      /^widget\.example\.com\/w1 unchanged$/m,
    );
    const narrow = await ok(['get', 'widgets', '-n', 'default']);
    assert.match(narrow, /^NAME\s+SIZE\s+AGE$/m);
    assert.match(narrow, /^w1\s+3\s+\d+s$/m);
    const wide = await ok(['get', 'widgets', '-n', 'default', '-o', 'wide']);
    assert.match(wide, /^NAME\s+SIZE\s+COLOR\s+AGE$/m);
    assert.match(wide, /^w1\s+3\s+red\s+\d+s$/m);
    const edited = widget.replace('size: 3', 'size: 4').replace('  color: red\n', '');
    assert.match(
      await ok(['apply', '-n', 'default', '-f', '-'], edited),
      /^widget\.example\.com\/w1 configured$/m,
    );
    const spec = (await getJson('default', 'widget', 'w1')).spec;
    assert.deepEqual(spec, { size: 4 });
    const explained = await ok(['explain', 'widget.spec.size']);
    assert.match(explained, /^KIND:\s+Widget$/m);
    assert.match(explained, /How big\./);
  });

  test('delete removes the objects of a manifest', async () => {
    const e = example('selectorless-service');
    const out = await ok(['delete', '-n', e.namespace, '-f', join(EXAMPLES, e.folder)]);
    assert.match(out, /^endpoints "my-service" deleted$/m);
    assert.match(out, /^service "my-service" deleted$/m);
    const gone = await kubectl(['get', 'service,endpoints', '-n', e.namespace, '-o', 'name']);
    assert.equal(gone.code, 0);
    assert.equal(gone.stdout.trim(), '');
    const again = await kubectl(['delete', 'service', 'my-service', '-n', e.namespace]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^Error from server \(NotFound\): services "my-service" not found$/m);
  });
});

/** A small admission webhook over HTTPS: answers by path and counts the reviews it receives. */
interface WebhookServer {
  url: string;
  caBundle: string;
  calls: Map<string, number>;
  close(): Promise<void>;
}

async function startWebhookServer(dir: string): Promise<WebhookServer> {
  mkdirSync(dir, { recursive: true });
  const certificates = await ensureServingCertificates(dir);
  const calls = new Map<string, number>();
  const answer = (
    path: string,
    request: { uid: string; object: { metadata: { labels?: Record<string, string> } } },
  ) => {
    const labels = request.object?.metadata?.labels ?? {};
    if (path === '/mutate') {
      const ops = [
        ...(labels === request.object.metadata.labels
          ? []
          : [{ op: 'add', path: '/metadata/labels', value: {} }]),
        { op: 'add', path: '/metadata/labels/portico.dev~1mutated', value: 'true' },
      ];
      return {
        allowed: true,
        patchType: 'JSONPatch',
        patch: Buffer.from(JSON.stringify(ops)).toString('base64'),
      };
    }
    if (path === '/validate' && labels.deny === 'yes')
      return {
        allowed: false,
        status: { code: 403, reason: 'Forbidden', message: 'services labelled deny=yes are refused' },
      };
    return { allowed: true, warnings: path === '/validate' ? ['checked by validate.portico.dev'] : [] };
  };
  const server: Server = createServer(
    { key: certificates.keyPem, cert: certificates.certPem },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const path = new URL(req.url ?? '/', 'https://x').pathname;
        calls.set(path, (calls.get(path) ?? 0) + 1);
        const review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const response = { uid: review.request.uid, ...answer(path, review.request) };
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caBundle: Buffer.from(certificates.caPem).toString('base64'),
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('kubectl through admission webhooks of the local API server', () => {
  let server: ApiServer;
  let hooks: WebhookServer;
  let workDir = '';
  const kubectl = (args: readonly string[], stdin?: string): Promise<KubectlResult> =>
    runKubectl(kubectlEnv(server, workDir), args, stdin);
  const ok = (args: readonly string[], stdin?: string): Promise<string> =>
    kubectlOk(kubectlEnv(server, workDir), args, stdin);

  const SERVICE_RULES = [
    { operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['services'] },
  ];

  function webhookConfiguration(
    kind: 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration',
    name: string,
    webhook: Record<string, unknown>,
  ): string {
    return JSON.stringify({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind,
      metadata: { name },
      webhooks: [
        {
          rules: SERVICE_RULES,
          namespaceSelector: { matchLabels: { 'portico.dev/webhooks': 'on' } },
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 5,
          ...webhook,
        },
      ],
    });
  }

  function service(name: string, labels: Record<string, string> = {}): string {
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'hooked', labels },
      spec: { selector: { app: name }, ports: [{ port: 80 }] },
    });
  }

  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'portico-kubectl-webhooks-'));
    server = await startApiServer({ dataDir: join(workDir, 'server') });
    hooks = await startWebhookServer(join(workDir, 'webhook'));
    await ok(
      ['create', '-f', '-'],
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: hooked\n  labels:\n    portico.dev/webhooks: "on"\n',
    );
    await ok(
      ['apply', '-f', '-'],
      webhookConfiguration('MutatingWebhookConfiguration', 'portico-mutate', {
        name: 'mutate.portico.dev',
        clientConfig: { url: `${hooks.url}/mutate`, caBundle: hooks.caBundle },
      }),
    );
    await ok(
      ['apply', '-f', '-'],
      webhookConfiguration('ValidatingWebhookConfiguration', 'portico-validate', {
        name: 'validate.portico.dev',
        clientConfig: { url: `${hooks.url}/validate`, caBundle: hooks.caBundle },
      }),
    );
  });

  after(async () => {
    await hooks?.close();
    await server?.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('the mutating webhook patch is applied and validating warnings reach kubectl', async () => {
    const result = await kubectl(['apply', '-f', '-'], service('mutated'));
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /^Warning: checked by validate\.portico\.dev$/m);
    const labels = await ok([
      'get',
      'service',
      'mutated',
      '-n',
      'hooked',
      '-o',
      'jsonpath={.metadata.labels}',
    ]);
    assert.deepEqual(JSON.parse(labels), { 'portico.dev/mutated': 'true' });
    const listed = await ok(['get', 'mutatingwebhookconfigurations,validatingwebhookconfigurations']);
    assert.match(
      listed,
      /^mutatingwebhookconfiguration\.admissionregistration\.k8s\.io\/portico-mutate\s+1\s/m,
    );
  });

  test('a namespace outside the namespaceSelector is not sent to the webhooks', async () => {
    const before = hooks.calls.get('/mutate') ?? 0;
    await ok(
      ['apply', '-n', 'default', '-f', '-'],
      service('unhooked').replace('"namespace":"hooked"', '"namespace":"default"'),
    );
    assert.equal(hooks.calls.get('/mutate') ?? 0, before);
    const labels = await ok([
      'get',
      'service',
      'unhooked',
      '-n',
      'default',
      '-o',
      'jsonpath={.metadata.labels}',
    ]);
    assert.deepEqual(labels === '' ? {} : JSON.parse(labels), {}, 'not mutated');
  });

  test('a denial reaches kubectl with the webhook message and code', async () => {
    const result = await kubectl(['apply', '-f', '-'], service('refused', { deny: 'yes' }));
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^Error from server \(Forbidden\): error when creating "STDIN": admission webhook "validate\.portico\.dev" denied the request: services labelled deny=yes are refused$/m,
    );
    const missing = await kubectl(['get', 'service', 'refused', '-n', 'hooked']);
    assert.equal(missing.code, 1);
  });

  test('a dead webhook fails the request under failurePolicy Fail and is skipped under Ignore', async () => {
    const dead = (policy: string): string =>
      webhookConfiguration('ValidatingWebhookConfiguration', 'portico-dead', {
        name: 'dead.portico.dev',
        failurePolicy: policy,
        clientConfig: { url: 'https://127.0.0.1:1/dead', caBundle: hooks.caBundle },
      });
    await ok(['apply', '-f', '-'], dead('Fail'));
    const failed = await kubectl(['apply', '-f', '-'], service('while-dead'));
    assert.equal(failed.code, 1);
    assert.match(
      failed.stderr,
      /Error from server \(InternalError\): error when creating "STDIN": Internal error occurred: failed calling webhook "dead\.portico\.dev": failed to call webhook: Post "https:\/\/127\.0\.0\.1:1\/dead\?timeout=5s": dial tcp 127\.0\.0\.1:1: connect: connection refused/,
    );
    await ok(['apply', '-f', '-'], dead('Ignore'));
    await ok(['apply', '-f', '-'], service('while-dead'));
    await ok(['delete', 'validatingwebhookconfiguration', 'portico-dead']);
  });

  test('dry run does not call a webhook with sideEffects Unknown and refuses the request', async () => {
    await ok(
      ['apply', '-f', '-'],
      webhookConfiguration('ValidatingWebhookConfiguration', 'portico-unknown-effects', {
        name: 'effects.portico.dev',
        sideEffects: 'Unknown',
        clientConfig: { url: `${hooks.url}/effects`, caBundle: hooks.caBundle },
      }),
    );
    const refused = await kubectl(['apply', '--dry-run=server', '-f', '-'], service('dry'));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /admission webhook "effects\.portico\.dev" does not support dry run/);
    assert.equal(hooks.calls.get('/effects') ?? 0, 0, 'the webhook was not called');
    await ok(['apply', '-f', '-'], service('wet'));
    assert.equal(hooks.calls.get('/effects'), 1, 'without dry run it is called');
    await ok(['delete', 'validatingwebhookconfiguration', 'portico-unknown-effects']);
  });
});
