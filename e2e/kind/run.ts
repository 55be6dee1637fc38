/**
 * `npm run e2e:kind`: Portico on a real cluster. Creates a kind cluster without kube-proxy and
 * without kube-controller-manager's endpoint controllers, builds and loads Portico's images,
 * installs the chart once per proxy mode, runs the scenarios, keeps logs and object dumps when
 * anything fails, and deletes the cluster.
 *
 * Where docker (with a running engine) or kind is missing it prints `skipped: needs docker and
 * kind` and exits 1, so a skip is never mistaken for a pass; `--allow-skip` or
 * PORTICO_E2E_ALLOW_SKIP=1 turns that exit into 0.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PROXY_MODES, type ProxyMode } from '../scenarios/driver.ts';
import { runScenarios } from '../scenarios/index.ts';
import { ensureHelm, ensureKubectl, REPO_ROOT } from '../tools/helm.ts';
import { KindCluster, missingPrerequisites, mustRun } from './cluster.ts';
import { KindScenarioDriver } from './driver.ts';

/** The exact line printed when the suite cannot run here. */
export const SKIP_LINE = 'skipped: needs docker and kind';

/** Images the suite builds, with the tag charts/portico/ci/kind-values.yaml expects. */
export const IMAGES = [
  { dockerfile: 'e2e/kind/images/Dockerfile.controller-manager', tag: 'portico-controller-manager:e2e' },
  { dockerfile: 'e2e/kind/images/Dockerfile.agent', tag: 'portico-agent:e2e' },
] as const;

const RELEASE = 'portico';
const RELEASE_NAMESPACE = 'portico-system';

/** Decoded command line. */
export interface KindRunOptions {
  allowSkip: boolean;
  keepCluster: boolean;
  clusterName: string;
  modes: ProxyMode[];
  artifactsDir: string;
}

/** Parses flags and environment; throws with a usage message for anything malformed. */
export function parseRunOptions(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): KindRunOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'allow-skip': { type: 'boolean', default: false },
      'keep-cluster': { type: 'boolean', default: false },
      'cluster-name': { type: 'string', default: 'portico-e2e' },
      mode: { type: 'string', multiple: true },
      'artifacts-dir': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const modes = values.mode ?? [...PROXY_MODES];
  for (const mode of modes) {
    if (!PROXY_MODES.includes(mode as ProxyMode)) {
      throw new Error(
        `--mode: Unsupported value: ${JSON.stringify(mode)}: supported values: ${PROXY_MODES.map((m) => `"${m}"`).join(', ')}`,
      );
    }
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    allowSkip: values['allow-skip'] || env['PORTICO_E2E_ALLOW_SKIP'] === '1',
    keepCluster: values['keep-cluster'],
    clusterName: values['cluster-name'],
    modes: modes as ProxyMode[],
    artifactsDir: resolve(values['artifacts-dir'] ?? join(REPO_ROOT, '.portico', 'e2e-kind', stamp)),
  };
}

/**
 * What must hold before any scenario means something: both components rolled out, CoreDNS ready
 * (it reaches the API server through the kubernetes Service, so only through Portico's agent),
 * Portico's own Service published in an EndpointSlice written by Portico, and a pod reaching the
 * API server by DNS name and ClusterIP.
 */
async function smokeTest(driver: KindScenarioDriver): Promise<void> {
  const { cluster } = driver;
  await cluster.kubectl([
    '-n',
    RELEASE_NAMESPACE,
    'rollout',
    'status',
    `deployment/${RELEASE}-controller-manager`,
    '--timeout=180s',
  ]);
  await cluster.kubectl([
    '-n',
    RELEASE_NAMESPACE,
    'rollout',
    'status',
    `daemonset/${RELEASE}-agent`,
    '--timeout=180s',
  ]);
  await cluster.kubectl(['-n', 'kube-system', 'rollout', 'status', 'deployment/coredns', '--timeout=180s']);
  const managedBy = await cluster.kubectl([
    '-n',
    RELEASE_NAMESPACE,
    'get',
    'endpointslices',
    '-l',
    `kubernetes.io/service-name=${RELEASE}-webhook`,
    '-o',
    'jsonpath={.items[*].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by}',
  ]);
  if (!managedBy.includes('portico.dev')) {
    throw new Error(
      `the EndpointSlice of Service ${RELEASE}-webhook is not written by Portico (managed-by: "${managedBy}")`,
    );
  }
  await driver.ensureClient();
  const livez = await driver.execInClient([
    'curl',
    '-sSk',
    '-m',
    '10',
    'https://kubernetes.default.svc/livez',
  ]);
  if (livez.trim() !== 'ok') {
    throw new Error(`https://kubernetes.default.svc/livez from a pod answered ${JSON.stringify(livez)}`);
  }
}

async function buildAndLoadImages(cluster: KindCluster): Promise<void> {
  for (const image of IMAGES) {
    await mustRun('docker', ['build', '-f', image.dockerfile, '-t', image.tag, '.'], {
      cwd: REPO_ROOT,
      env: { ...process.env, DOCKER_BUILDKIT: '1' },
    });
    await cluster.loadImage(image.tag);
  }
}

async function installChart(cluster: KindCluster, mode: ProxyMode): Promise<void> {
  const helm = await ensureHelm();
  await mustRun(helm, [
    'upgrade',
    '--install',
    RELEASE,
    join(REPO_ROOT, 'charts', 'portico'),
    '--namespace',
    RELEASE_NAMESPACE,
    '--create-namespace',
    '--kubeconfig',
    cluster.kubeconfigPath,
    '--values',
    join(REPO_ROOT, 'charts', 'portico', 'ci', 'kind-values.yaml'),
    '--set',
    `kubernetesAPI.host=${cluster.controlPlaneNode}`,
    '--set',
    `agent.mode=${mode}`,
    '--wait',
    '--timeout',
    '5m',
  ]);
}

/** Runs the suite; resolves with the process exit code. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let options: KindRunOptions;
  try {
    options = parseRunOptions(argv, env);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  const missing = await missingPrerequisites(env);
  if (missing !== undefined) {
    process.stdout.write(`${SKIP_LINE}\n`);
    process.stderr.write(`(${missing}; pass --allow-skip or set PORTICO_E2E_ALLOW_SKIP=1 to exit 0)\n`);
    return options.allowSkip ? 0 : 1;
  }
  const cluster = new KindCluster(
    options.clusterName,
    join(options.artifactsDir, 'cluster'),
    await ensureKubectl(),
  );
  // Ctrl-C must not leave a cluster behind; finally blocks do not run on a signal.
  const onSignal = () => {
    if (!options.keepCluster)
      spawnSync('kind', ['delete', 'cluster', '--name', cluster.name], { stdio: 'inherit' });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await cluster.create();
    await cluster.verifyControllersDisabled();
    await buildAndLoadImages(cluster);
    for (const mode of options.modes) {
      process.stderr.write(`\n== agent mode ${mode}\n`);
      await installChart(cluster, mode);
      const driver = new KindScenarioDriver(cluster, mode);
      await smokeTest(driver);
      await runScenarios(driver);
    }
    process.stdout.write(`kind e2e passed (modes: ${options.modes.join(', ')})\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`kind e2e failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    await cluster
      .collectDiagnostics(join(options.artifactsDir, 'diagnostics'))
      .catch((dumpError: unknown) => {
        process.stderr.write(`collecting diagnostics failed too: ${String(dumpError)}\n`);
      });
    process.stderr.write(`logs and object dumps: ${join(options.artifactsDir, 'diagnostics')}\n`);
    return 1;
  } finally {
    if (options.keepCluster) {
      process.stderr.write(`kept cluster ${cluster.name}; KUBECONFIG=${cluster.kubeconfigPath}\n`);
    } else {
      await cluster.delete();
    }
  }
}

if (import.meta.main) {
  process.exit(await main(process.argv.slice(2)));
}
