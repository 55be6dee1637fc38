/**
 * What a shared scenario may ask of a cluster. Scenarios (e2e/scenarios/*.ts) are written once
 * against {@link ScenarioDriver}; the local driver (local-driver.ts: the local cluster in dataplane
 * mode, in `npm test`) and the kind driver (e2e/kind/driver.ts) implement it. The interface holds
 * only what cannot be written portably on top of it: everything else belongs in a scenario or in
 * helpers.ts.
 */

/** How the agent programs Services; one cluster (local) or one chart install (kind) per mode. */
export type ProxyMode = 'iptables' | 'nftables' | 'ipvs';

/** Every mode the agent has, in the order the suites run them. */
export const PROXY_MODES: readonly ProxyMode[] = ['iptables', 'nftables', 'ipvs'];

/** Which implementation runs a scenario; a scenario may restrict itself to some. */
export type DriverName = 'local' | 'kind';

/** Namespace holding the client pod and the scenarios' objects; every driver creates it. */
export const SCENARIO_NAMESPACE = 'portico-e2e';

/** What an HTTP GET from outside the cluster got back. */
export interface OutsideResponse {
  /** curl's exit code: 0 when a response arrived, 7 for refused, 28 for timed out. */
  curlExitCode: number;
  /** The HTTP status, 0 when no response arrived. */
  httpStatus: number;
  body: string;
}

/**
 * curl's `--write-out` argument that both drivers use for outside requests: the HTTP status on a
 * line of its own after the body (curl itself turns the `\\n` into a newline).
 */
export const CURL_STATUS_WRITE_OUT = '\\n--portico-http-status:%{http_code}';

const STATUS_MARKER = '\n--portico-http-status:';

/** Splits what curl printed with {@link CURL_STATUS_WRITE_OUT} into body and HTTP status. */
export function parseCurlOutput(stdout: string, curlExitCode: number): OutsideResponse {
  const at = stdout.lastIndexOf(STATUS_MARKER);
  if (at === -1) return { curlExitCode, httpStatus: 0, body: stdout };
  return {
    curlExitCode,
    httpStatus: Number(stdout.slice(at + STATUS_MARKER.length).trim()) || 0,
    body: stdout.slice(0, at),
  };
}

/** A node as scenarios address it: its name (for `spec.nodeName`, {@link ScenarioDriver.nodeRules}) and InternalIP. */
export interface ScenarioNode {
  name: string;
  address: string;
}

/**
 * Where a container with {@link webContainer}'s readiness probe keeps the file its probe path
 * serves: removing it fails the probe on a real kubelet.
 */
export const READINESS_FILE_PATH = '/srv/web/ready';

/**
 * A web container that serves `<p>The host is <pod name></p>` on port 80 (named `http`) and has
 * an httpGet readiness probe on `/ready`, which {@link ScenarioDriver.setPodReadiness} can make
 * fail. The image is the seeds' `python:3.7`; the local cluster ignores the image and runs its pod
 * server, which answers the same way.
 */
export function webContainer(name = 'web'): Record<string, unknown> {
  return {
    name,
    image: 'python:3.7',
    imagePullPolicy: 'IfNotPresent',
    command: ['sh', '-c'],
    args: [
      'mkdir -p /srv/web && cd /srv/web && echo "<p>The host is $(hostname)</p>" > index.html && touch ready && exec python -m http.server 80',
    ],
    ports: [{ name: 'http', containerPort: 80 }],
    readinessProbe: { httpGet: { path: '/ready', port: 80 }, periodSeconds: 1, failureThreshold: 1 },
  };
}

/**
 * The kubectl arguments of the {@link ScenarioDriver} operations that are plain kubectl on every
 * driver (manifests go in on stdin), so drivers differ only in how they run kubectl.
 */
export const scenarioKubectlArgs = {
  apply(namespace: string): string[] {
    return ['apply', '-n', namespace, '-f', '-'];
  },
  delete(namespace: string): string[] {
    return ['delete', '-n', namespace, '--ignore-not-found', '--wait', '-f', '-'];
  },
  wait(resource: string, condition: string, timeoutSeconds: number, namespace: string): string[] {
    return ['wait', '-n', namespace, resource, `--for=${condition}`, `--timeout=${timeoutSeconds}s`];
  },
  read(resource: string, jsonPath: string, namespace: string): string[] {
    return ['get', '-n', namespace, resource, '-o', `jsonpath=${jsonPath}`];
  },
};

/** The operations a scenario runs against a cluster with Portico installed, for one proxy mode. */
export interface ScenarioDriver {
  readonly driverName: DriverName;
  /** The agents' `--mode` (the local driver's ipvs falls back to iptables on a kernel without IPVS). */
  readonly mode: ProxyMode;

  /** Creates or updates the objects in a YAML or JSON stream (`kubectl apply`). */
  apply(manifests: string, namespace?: string): Promise<void>;

  /** Deletes the objects in a YAML or JSON stream and waits until they are gone; missing ones are fine. */
  delete(manifests: string, namespace?: string): Promise<void>;

  /**
   * Waits as `kubectl wait --for=<condition>` does on `resource`, e.g. (`deployment/web`,
   * `condition=Available`) or (`service/lb`, `jsonpath={.status.loadBalancer.ingress[0].ip}`);
   * throws when the timeout passes.
   */
  waitFor(resource: string, condition: string, timeoutSeconds?: number, namespace?: string): Promise<void>;

  /** Reads fields of an object with a JSONPath expression (`kubectl get -o jsonpath=`); `resource` may be a kind alone (`pods`). */
  read(resource: string, jsonPath: string, namespace?: string): Promise<string>;

  /** Makes the in-cluster client ready (idempotent); call before {@link execInClient}. */
  ensureClient(): Promise<void>;

  /**
   * Runs a command (argv, with `curl` and `sh` available) in the client pod `client`: with
   * `kubectl exec` in kind, in the pod's network namespace with the host's binaries locally.
   * Returns stdout; a non-zero exit throws.
   */
  execInClient(command: readonly string[]): Promise<string>;

  /**
   * Sends an HTTP GET from outside every node, the path NodePort and LoadBalancer traffic from real
   * clients takes: a container on the kind docker network, a LAN client namespace locally. Its
   * source address lies in the /16 of the nodes' addresses in both.
   */
  fetchFromOutside(url: string, timeoutSeconds?: number): Promise<OutsideResponse>;

  /** Every node with its InternalIP, where NodePorts answer. */
  nodes(): Promise<ScenarioNode[]>;

  /**
   * The rules the agent wrote on a node, as the kernel lists them: `iptables-save`, `nft list
   * ruleset` or `ipvsadm -Ln` for the mode the agent actually runs.
   */
  nodeRules(node: string): Promise<string>;

  /** An address range (CIDR or `first-last`) for LoadBalancerIPPools, reachable by {@link fetchFromOutside}. */
  loadBalancerRange(): Promise<string>;

  /**
   * Makes the readiness probe of a pod built from {@link webContainer} fail (`ready` false) or pass
   * again; the kubelet then flips the pod's Ready condition after its probe period. (Kind removes
   * the file the probe path serves; the local pod server answers every path, so the local driver
   * sets the local kubelet's readiness override, which it folds in as a failing probe.)
   */
  setPodReadiness(pod: string, ready: boolean, namespace?: string): Promise<void>;

  /**
   * Runs kubectl against the cluster with `args` (stdin from `input`) and returns its stdout; a
   * non-zero exit throws. For what the operations above don't cover: status patches, labels, tables.
   */
  kubectl(args: readonly string[], input?: string): Promise<string>;
}

/**
 * One scenario: `run` throws (an assertion error, usually) when the cluster misbehaves. A scenario
 * creates what it needs in {@link SCENARIO_NAMESPACE} (the client exists before it runs), may
 * rely on nothing another scenario left, and deletes what it created unless that is shared on
 * purpose (e.g. the seeds' demo).
 */
export interface Scenario {
  readonly name: string;
  /** The proxy modes it means something in; absent means every mode. */
  readonly modes?: readonly ProxyMode[];
  /** The drivers that can run it; absent means every driver. */
  readonly drivers?: readonly DriverName[];
  run(driver: ScenarioDriver): Promise<void>;
}
