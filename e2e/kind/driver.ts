/**
 * The kind implementation of what a scenario needs from a cluster: apply manifests, wait for a
 * condition, run a command in a client pod, reach a NodePort or LoadBalancer IP from outside, and
 * read a node's rules. The shared scenarios (e2e/scenarios, to come) are written against these
 * operations; the local driver (e2e/local) implements the same ones.
 */
import type { KindCluster } from './cluster.ts';
import { mustRun, runCommand } from './cluster.ts';

/** How the agent programs Services; one chart install per mode. */
export type ProxyMode = 'iptables' | 'nftables' | 'ipvs';

/** Every mode the agent has, in the order the suite runs them. */
export const PROXY_MODES: readonly ProxyMode[] = ['iptables', 'nftables', 'ipvs'];

/** Namespace holding the client pod and the scenarios' objects. */
export const SCENARIO_NAMESPACE = 'portico-e2e';

/** Image of the in-cluster and outside clients (curl and a shell, nothing else). */
export const CLIENT_IMAGE = 'curlimages/curl:8.11.1';

const CLIENT_POD = 'client';

/** What an HTTP request from outside the cluster got back. */
export interface OutsideResponse {
  /** curl's exit code: 0 when a response arrived, 7 for refused, 28 for timed out. */
  curlExitCode: number;
  body: string;
}

/** Scenario operations on a kind cluster, for one proxy mode. */
export class KindScenarioDriver {
  readonly driverName = 'kind';
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

  /** Creates or updates the objects in a YAML stream (`kubectl apply`). */
  async apply(manifests: string, namespace = SCENARIO_NAMESPACE): Promise<void> {
    await this.cluster.kubectl(['apply', '-n', namespace, '-f', '-'], { input: manifests });
  }

  /** Deletes the objects in a YAML stream and waits until they are gone. */
  async delete(manifests: string, namespace = SCENARIO_NAMESPACE): Promise<void> {
    await this.cluster.kubectl(['delete', '-n', namespace, '--ignore-not-found', '--wait', '-f', '-'], {
      input: manifests,
    });
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
    await this.cluster.kubectl([
      'wait',
      '-n',
      namespace,
      resource,
      `--for=${condition}`,
      `--timeout=${timeoutSeconds}s`,
    ]);
  }

  /** Reads one field of an object with a JSONPath expression. */
  async read(resource: string, jsonPath: string, namespace = SCENARIO_NAMESPACE): Promise<string> {
    return this.cluster.kubectl(['get', '-n', namespace, resource, '-o', `jsonpath=${jsonPath}`]);
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
      url,
    ]);
    return { curlExitCode: result.code, body: result.stdout };
  }

  /** The InternalIP of every node, where NodePorts answer. */
  async nodeAddresses(): Promise<string[]> {
    const out = await this.cluster.kubectl([
      'get',
      'nodes',
      '-o',
      'jsonpath={range .items[*]}{.status.addresses[?(@.type=="InternalIP")].address}{"\\n"}{end}',
    ]);
    return out.split('\n').filter((line) => line !== '');
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
}
