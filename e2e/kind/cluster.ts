/**
 * The kind cluster the e2e suite runs on, and the commands that drive it (kind, docker, kubectl,
 * helm). The cluster replaces kube-proxy and kube-controller-manager's endpoint controllers with
 * Portico, so every Service in it works only through Portico.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** Pod CIDR of the kind cluster (kind's default), passed to the agent as --cluster-cidr. */
export const KIND_POD_SUBNET = '10.244.0.0/16';

/** Service CIDR of the kind cluster; the chart's serviceClusterIPRange must equal it. */
export const KIND_SERVICE_SUBNET = '10.96.0.0/16';

/**
 * kube-controller-manager's controllers with the three Portico replaces turned off, so nothing but
 * Portico writes Endpoints and EndpointSlices.
 */
export const KCM_CONTROLLERS =
  '*,-endpoint-controller,-endpointslice-controller,-endpointslicemirroring-controller';

/** Options of {@link kindClusterConfig}. */
export interface KindClusterConfigOptions {
  name: string;
  /** Worker nodes beside the control plane (default 2, so ETP Local and anti-affinity mean something). */
  workers?: number;
}

/**
 * The kind `Cluster` config: no kube-proxy, no built-in endpoint controllers. The kubeadm patch
 * names v1beta3 with map-style extraArgs explicitly because that is the version kind generates and
 * patches match by apiVersion; {@link verifyControllersDisabled} checks after creation that it took.
 */
export function kindClusterConfig(options: KindClusterConfigOptions): Record<string, unknown> {
  const controllerManagerPatch = {
    apiVersion: 'kubeadm.k8s.io/v1beta3',
    kind: 'ClusterConfiguration',
    controllerManager: { extraArgs: { controllers: KCM_CONTROLLERS } },
  };
  return {
    kind: 'Cluster',
    apiVersion: 'kind.x-k8s.io/v1alpha4',
    name: options.name,
    networking: {
      kubeProxyMode: 'none',
      podSubnet: KIND_POD_SUBNET,
      serviceSubnet: KIND_SERVICE_SUBNET,
    },
    nodes: [
      { role: 'control-plane', kubeadmConfigPatches: [stringify(controllerManagerPatch)] },
      ...Array.from({ length: options.workers ?? 2 }, () => ({ role: 'worker' })),
    ],
  };
}

/** What one command printed and how it ended. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@link runCommand}. */
export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Echo the command line to stderr first (default true), so a CI log shows what ran. */
  echo?: boolean;
  /** Kill the command (SIGTERM) when it runs longer than this; the result's stderr says so. */
  timeoutMs?: number;
}

/**
 * Runs a command and collects its output. A missing executable resolves with code 127 (as a
 * shell reports it) instead of rejecting, so prerequisite checks read like any other failure.
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  if (options.echo ?? true) {
    process.stderr.write(`$ ${[command, ...args].join(' ')}\n`);
  }
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      timeout: options.timeoutMs,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      resolve({ code: error.code === 'ENOENT' ? 127 : 1, stdout: '', stderr: error.message });
    });
    child.on('close', (code, signal) => {
      const errorText = Buffer.concat(stderr).toString('utf8');
      resolve({
        code: code ?? 128,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: signal === null ? errorText : `${errorText}killed by ${signal}`,
      });
    });
    child.stdin.on('error', () => {
      // The child may exit before reading its input (e.g. a bad flag); its exit code tells why.
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Like {@link runCommand}, but a non-zero exit throws with the command's stderr. */
export async function mustRun(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<string> {
  const result = await runCommand(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited with ${result.code}:\n${result.stderr || result.stdout}`,
    );
  }
  return result.stdout;
}

/** Why the kind suite cannot run here, or undefined when docker (with an engine) and kind are present. */
export async function missingPrerequisites(
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const docker = await runCommand('docker', ['info', '--format', '{{.ServerVersion}}'], { env, echo: false });
  if (docker.code === 127) return 'docker is not installed';
  if (docker.code !== 0)
    return `docker has no running engine (docker info: ${docker.stderr.trim().split('\n')[0]})`;
  const kind = await runCommand('kind', ['version'], { env, echo: false });
  if (kind.code !== 0) return 'kind is not installed';
  return undefined;
}

/** A kind cluster the suite creates, drives and deletes, with kubectl pointed at it. */
export class KindCluster {
  readonly name: string;
  readonly workDir: string;
  readonly kubeconfigPath: string;
  readonly #kubectl: string;

  /**
   * @param name kind cluster name
   * @param workDir where the kind config and the kubeconfig are written
   * @param kubectl path of the kubectl binary
   */
  constructor(name: string, workDir: string, kubectl: string) {
    this.name = name;
    this.workDir = workDir;
    this.kubeconfigPath = join(workDir, 'kubeconfig');
    this.#kubectl = kubectl;
  }

  /** Creates the cluster from {@link kindClusterConfig} and waits for its control plane. */
  async create(): Promise<void> {
    await mkdir(this.workDir, { recursive: true });
    const configPath = join(this.workDir, 'kind-config.yaml');
    await writeFile(configPath, stringify(kindClusterConfig({ name: this.name })));
    await mustRun('kind', [
      'create',
      'cluster',
      '--name',
      this.name,
      '--config',
      configPath,
      '--kubeconfig',
      this.kubeconfigPath,
      '--wait',
      '180s',
    ]);
  }

  /** The docker container name of the control-plane node, which is also its DNS name on the kind network. */
  get controlPlaneNode(): string {
    return `${this.name}-control-plane`;
  }

  /** Runs kubectl against the cluster. */
  kubectl(args: readonly string[], options: RunOptions = {}): Promise<string> {
    return mustRun(this.#kubectl, ['--kubeconfig', this.kubeconfigPath, ...args], options);
  }

  /** Names of the node containers (`docker exec` targets). */
  async nodes(): Promise<string[]> {
    const out = await mustRun('kind', ['get', 'nodes', '--name', this.name], { echo: false });
    return out.split('\n').filter((line) => line.trim() !== '');
  }

  /** Loads a locally built image into every node, as `imagePullPolicy: Never` requires. */
  async loadImage(image: string): Promise<void> {
    await mustRun('kind', ['load', 'docker-image', image, '--name', this.name]);
  }

  /**
   * Fails unless kube-controller-manager really runs without its endpoint controllers: with them on,
   * every scenario would pass without Portico and prove nothing.
   */
  async verifyControllersDisabled(): Promise<void> {
    const command = await this.kubectl([
      '-n',
      'kube-system',
      'get',
      'pods',
      '-l',
      'component=kube-controller-manager',
      '-o',
      'jsonpath={.items[0].spec.containers[0].command}',
    ]);
    if (!command.includes(`--controllers=${KCM_CONTROLLERS}`)) {
      throw new Error(
        `kube-controller-manager does not run with --controllers=${KCM_CONTROLLERS} (the kubeadm patch did not apply); its command is ${command}`,
      );
    }
  }

  /** An address range on the kind docker network, outside docker's own assignments, for LoadBalancer pools. */
  async loadBalancerRange(): Promise<string> {
    const subnets = await mustRun('docker', [
      'network',
      'inspect',
      'kind',
      '--format',
      '{{range .IPAM.Config}}{{.Subnet}} {{end}}',
    ]);
    const ipv4 = subnets.split(' ').find((subnet) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(subnet));
    if (!ipv4) throw new Error(`the kind docker network has no IPv4 subnet: ${subnets}`);
    const [a, b] = ipv4.split('.');
    // Docker hands out addresses from the bottom of the subnet; the top /24 of a /16 stays free.
    return `${a}.${b}.255.200-${a}.${b}.255.250`;
  }

  /** Writes object dumps, Portico's logs and `kind export logs` into `dir`; never throws. */
  async collectDiagnostics(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const dumps: [string, string[]][] = [
      [
        'objects.yaml',
        [
          'get',
          'nodes,pods,services,endpoints,endpointslices,loadbalancerippools,configmaps,leases,events',
          '--all-namespaces',
          '-o',
          'yaml',
        ],
      ],
      [
        'webhooks.yaml',
        ['get', 'mutatingwebhookconfigurations,validatingwebhookconfigurations', '-o', 'yaml'],
      ],
      [
        'portico.log',
        [
          'logs',
          '--all-namespaces',
          '-l',
          'app.kubernetes.io/name=portico',
          '--all-containers',
          '--prefix',
          '--tail=-1',
        ],
      ],
      [
        'portico-previous.log',
        [
          'logs',
          '--all-namespaces',
          '-l',
          'app.kubernetes.io/name=portico',
          '--all-containers',
          '--prefix',
          '--previous',
          '--tail=-1',
        ],
      ],
    ];
    for (const [file, args] of dumps) {
      const result = await runCommand(this.#kubectl, ['--kubeconfig', this.kubeconfigPath, ...args]);
      await writeFile(
        join(dir, file),
        result.stdout + (result.stderr ? `\n# stderr:\n${result.stderr}` : ''),
      );
    }
    for (const node of await this.nodes().catch(() => [])) {
      const rules = await runCommand('docker', [
        'exec',
        node,
        'sh',
        '-c',
        'iptables-save; nft list ruleset; ipvsadm -Ln 2>/dev/null',
      ]);
      await writeFile(join(dir, `${node}-rules.txt`), rules.stdout + rules.stderr);
    }
    await runCommand('kind', ['export', 'logs', join(dir, 'kind'), '--name', this.name]);
  }

  /** Deletes the cluster (also a half-created one); never throws. */
  async delete(): Promise<void> {
    await runCommand('kind', ['delete', 'cluster', '--name', this.name]);
  }
}
