/**
 * The kind implementation of {@link ScenarioDriver}: kubectl against the kind cluster, a client
 * pod for in-cluster commands, a container on the kind docker network for outside traffic, and
 * `docker exec` into a node for its rules.
 */
import {
  CURL_STATUS_WRITE_OUT,
  type OutsideResponse,
  type ProxyMode,
  parseCurlOutput,
  READINESS_FILE_PATH,
  SCENARIO_NAMESPACE,
  type ScenarioDriver,
  type ScenarioNode,
  scenarioKubectlArgs,
} from '../scenarios/driver.ts';
import type { KindCluster } from './cluster.ts';
import { mustRun, runCommand } from './cluster.ts';

/** Image of the in-cluster and outside clients (curl and a shell, nothing else). */
export const CLIENT_IMAGE = 'curlimages/curl:8.11.1';

const CLIENT_POD = 'client';

/** Scenario operations on a kind cluster, for one proxy mode. */
export class KindScenarioDriver implements ScenarioDriver {
  readonly driverName = 'kind' as const;
  readonly mode: ProxyMode;
  readonly cluster: KindCluster;

  /**
   * @param cluster the cluster Portico is installed in
   * @param mode the agent's mode in this install
   */
  constructor(cluster: KindCluster, mode: ProxyMode) {
    this.cluster = cluster;
    this.mode = mode;
  }

  /** Creates or updates the objects in a YAML or JSON stream (`kubectl apply`). */
  async apply(manifests: string, namespace = SCENARIO_NAMESPACE): Promise<void> {
    await this.cluster.kubectl(scenarioKubectlArgs.apply(namespace), { input: manifests });
  }

  /** Deletes the objects in a YAML stream and waits until they are gone. */
  async delete(manifests: string, namespace = SCENARIO_NAMESPACE): Promise<void> {
    await this.cluster.kubectl(scenarioKubectlArgs.delete(namespace), { input: manifests });
  }

  /**
   * Waits for `kubectl wait --for=<condition>` on `resource` (e.g. `deployment/web`,
   * `condition=Available`, or `jsonpath={.status.loadBalancer.ingress[0].ip}`).
   */
  async waitFor(
    resource: string,
    condition: string,
    timeoutSeconds = 120,
    namespace = SCENARIO_NAMESPACE,
  ): Promise<void> {
    await this.cluster.kubectl(scenarioKubectlArgs.wait(resource, condition, timeoutSeconds, namespace));
  }

  /** Reads one field of an object with a JSONPath expression. */
  async read(resource: string, jsonPath: string, namespace = SCENARIO_NAMESPACE): Promise<string> {
    return this.cluster.kubectl(scenarioKubectlArgs.read(resource, jsonPath, namespace));
  }

  /** Starts the client pod (idempotent) and waits until it runs. */
  async ensureClient(): Promise<void> {
    await this.cluster.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SCENARIO_NAMESPACE } }),
    });
    await this.apply(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: CLIENT_POD, labels: { app: 'portico-e2e-client' } },
        spec: {
          terminationGracePeriodSeconds: 0,
          containers: [{ name: 'client', image: CLIENT_IMAGE, command: ['sleep', 'infinity'] }],
        },
      }),
    );
    await this.waitFor(`pod/${CLIENT_POD}`, 'condition=Ready');
  }

  /** Runs a command in the client pod and returns its stdout; a non-zero exit throws. */
  async execInClient(command: readonly string[]): Promise<string> {
    return this.cluster.kubectl(['exec', '-n', SCENARIO_NAMESPACE, CLIENT_POD, '--', ...command]);
  }

  /**
   * Sends an HTTP GET from a container on the kind docker network, outside every node: the path
   * NodePort and LoadBalancer traffic from real clients takes.
   */
  async fetchFromOutside(url: string, timeoutSeconds = 5): Promise<OutsideResponse> {
    const result = await runCommand('docker', [
      'run',
      '--rm',
      '--network',
      'kind',
      CLIENT_IMAGE,
      '-sS',
      '-m',
      String(timeoutSeconds),
      '-w',
      CURL_STATUS_WRITE_OUT,
      url,
    ]);
    return parseCurlOutput(result.stdout, result.code);
  }

  /** Every node (control plane included: the agent runs there too) with its InternalIP. */
  async nodes(): Promise<ScenarioNode[]> {
    const out = await this.cluster.kubectl([
      'get',
      'nodes',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}{" "}{.status.addresses[?(@.type=="InternalIP")].address}{"\\n"}{end}',
    ]);
    return out
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const [name = '', address = ''] = line.split(' ');
        return { name, address };
      });
  }

  /** The rules the agent wrote on a node, in the form of the current mode. */
  async nodeRules(node: string): Promise<string> {
    const command: Record<ProxyMode, string[]> = {
      iptables: ['iptables-save'],
      nftables: ['nft', 'list', 'ruleset'],
      ipvs: ['ipvsadm', '-Ln'],
    };
    return mustRun('docker', ['exec', node, ...command[this.mode]]);
  }

  /** A range on the kind docker network for LoadBalancerIPPool addresses, reachable from outside. */
  loadBalancerRange(): Promise<string> {
    return this.cluster.loadBalancerRange();
  }

  /** Runs kubectl against the kind cluster. */
  kubectl(args: readonly string[], input?: string): Promise<string> {
    return this.cluster.kubectl([...args], input === undefined ? {} : { input });
  }

  /** Removes or recreates the file behind the pod's readiness probe path (see webContainer). */
  async setPodReadiness(pod: string, ready: boolean, namespace = SCENARIO_NAMESPACE): Promise<void> {
    await this.cluster.kubectl([
      'exec',
      '-n',
      namespace,
      pod,
      '--',
      ...(ready ? ['touch'] : ['rm', '-f']),
      READINESS_FILE_PATH,
    ]);
  }
}
