/**
 * Test and benchmark support for the endpoint controllers: a local API server with the three
 * controllers running in-process, and helpers that create pods the way a kubelet reports them
 * (spec by create, then status through the /status subresource) and Nodes with zone labels.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  type V1EndpointSlice,
  type V1Node,
  type V1Pod,
  type V1Service,
} from '@kubernetes/client-node';
import { LABEL_MANAGED_BY, LABEL_SERVICE_NAME, LABEL_TOPOLOGY_ZONE } from '../api/labels.ts';
import { type ApiServer, startApiServer } from '../e2e/apiserver/index.ts';
import {
  createEndpointControllers,
  type EndpointControllers,
  type EndpointControllersConfig,
} from './endpoint-controllers.ts';
import { allEndpointInformers } from './endpoint-informers.ts';
import { createLogger, type Logger } from './runtime/logging.ts';
import { METRIC_PREFIX, metricsRegistry } from './runtime/metrics.ts';

/** A logger for tests: silent unless PORTICO_TEST_LOG_LEVEL asks for output. */
export function quietLogger(): Logger {
  return createLogger({ level: process.env['PORTICO_TEST_LOG_LEVEL'] ?? 'silent' });
}

/** Polls `condition` every 25 ms until it holds; throws with `what` (and the last state) after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T> | T,
  holds: (value: T) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (holds(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${JSON.stringify(value).slice(0, 2000)}`,
      );
    }
    await sleep(25);
  }
}

/**
 * Writes the endpoint controllers of this process have sent (Endpoints and EndpointSlices, every
 * operation), from their metrics; a second reconcile that writes nothing leaves it unchanged even
 * when the API server would have kept the resourceVersion of an identical write.
 */
export async function writesSent(): Promise<number> {
  let total = 0;
  for (const name of ['endpointslice_writes_total', 'endpoints_writes_total']) {
    const metric = metricsRegistry.getSingleMetric(`${METRIC_PREFIX}${name}`);
    if (metric === undefined) continue;
    for (const sample of (await metric.get()).values) total += sample.value;
  }
  return total;
}

/** Runs `work` over `items` with at most `limit` in flight. */
export async function inBatches<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Typed clients of one API server. */
export interface ClusterClients {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  discovery: DiscoveryV1Api;
}

/** Clients for the server described by a kubeconfig file. */
export function clientsFor(kubeconfigPath: string): ClusterClients {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  return {
    kubeConfig,
    core: kubeConfig.makeApiClient(CoreV1Api),
    discovery: kubeConfig.makeApiClient(DiscoveryV1Api),
  };
}

/** Creates a Node in `zone`. */
export async function createNode(core: CoreV1Api, name: string, zone: string): Promise<V1Node> {
  return core.createNode({
    body: { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { [LABEL_TOPOLOGY_ZONE]: zone } } },
  });
}

/** Fields of a pod made by {@link createRunningPod}. */
export interface PodInput {
  namespace?: string;
  name: string;
  labels: Record<string, string>;
  ip: string;
  nodeName: string;
  ready: boolean;
  containerPort?: number;
}

function readyConditions(ready: boolean): V1Pod['status'] {
  const status = ready ? 'True' : 'False';
  const lastTransitionTime = new Date();
  return {
    conditions: [
      { type: 'PodScheduled', status: 'True' },
      { type: 'ContainersReady', status, lastTransitionTime },
      { type: 'Ready', status, lastTransitionTime },
    ],
  };
}

/** Creates a pod bound to a node and then reports it Running with its IP, as a kubelet would. */
export async function createRunningPod(core: CoreV1Api, input: PodInput): Promise<V1Pod> {
  const namespace = input.namespace ?? 'default';
  const created = await core.createNamespacedPod({
    namespace,
    body: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: input.name, namespace, labels: input.labels },
      spec: {
        nodeName: input.nodeName,
        containers: [
          {
            name: 'app',
            image: 'registry.k8s.io/e2e-test-images/agnhost:2.47',
            ports: [{ name: 'http', containerPort: input.containerPort ?? 9376, protocol: 'TCP' }],
          },
        ],
      },
    },
  });
  created.status = {
    ...readyConditions(input.ready),
    phase: 'Running',
    podIP: input.ip,
    podIPs: [{ ip: input.ip }],
  };
  return core.replaceNamespacedPodStatus({ name: input.name, namespace, body: created });
}

/** Flips a pod's Ready condition through /status; returns the written pod. */
export async function setPodReady(core: CoreV1Api, pod: V1Pod, ready: boolean): Promise<V1Pod> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const name = pod.metadata?.name ?? '';
  const current = await core.readNamespacedPod({ name, namespace });
  current.status = { ...current.status, ...readyConditions(ready) };
  return core.replaceNamespacedPodStatus({ name, namespace, body: current });
}

/** The IPv4 address number `n` in 198.18.0.0/15. */
export function podIP(n: number): string {
  return `198.${18 + ((n >> 16) & 1)}.${(n >> 8) & 255}.${n & 255}`;
}

/** A ClusterIP Service selecting `selector`, port 80 → targetPort 9376 (seed 001's shape). */
export function clusterIPService(
  name: string,
  selector: Record<string, string> | undefined,
  clusterIP: string,
): V1Service {
  const service: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: {
      type: 'ClusterIP',
      clusterIP,
      clusterIPs: [clusterIP],
      ipFamilies: ['IPv4'],
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 9376 }],
    },
  };
  if (selector !== undefined) service.spec!.selector = selector;
  return service;
}

/** The EndpointSlices of a Service managed by `managedBy`, by label selector. */
export async function slicesOf(
  discovery: DiscoveryV1Api,
  service: string,
  managedBy: string,
  namespace = 'default',
): Promise<V1EndpointSlice[]> {
  const list = await discovery.listNamespacedEndpointSlice({
    namespace,
    labelSelector: `${LABEL_SERVICE_NAME}=${service},${LABEL_MANAGED_BY}=${managedBy}`,
  });
  return list.items;
}

/** A local API server with the endpoint controllers running against it in-process. */
export interface EndpointTestCluster extends ClusterClients {
  server: ApiServer;
  endpointControllers: EndpointControllers;
  /** Resolves when every controller's queue is empty. */
  idle(): Promise<void>;
  /** Stops the controllers and informers, then the server. */
  close(): Promise<void>;
}

/** Starts an API server and the three endpoint controllers (informers synced, workers running). */
export async function startEndpointTestCluster(
  config: EndpointControllersConfig = {},
): Promise<EndpointTestCluster> {
  const server = await startApiServer({ bookmarkIntervalMs: 60_000, historyWindow: 200_000 });
  const clients = clientsFor(server.kubeconfigPath);
  const endpointControllers = createEndpointControllers(clients.kubeConfig, quietLogger(), config);
  const informers = allEndpointInformers(endpointControllers.informers);
  try {
    for (const informer of informers) informer.start();
    await Promise.all(informers.map((informer) => informer.waitForSync(AbortSignal.timeout(15_000))));
    for (const controller of endpointControllers.controllers) controller.run();
  } catch (error) {
    await Promise.all(informers.map((informer) => informer.stop()));
    await server.close();
    throw error;
  }
  return {
    ...clients,
    server,
    endpointControllers,
    idle: async () => {
      await Promise.all(endpointControllers.controllers.map((controller) => controller.whenIdle()));
    },
    close: async () => {
      await Promise.all(endpointControllers.controllers.map((controller) => controller.stop(2_000)));
      await Promise.all(informers.map((informer) => informer.stop()));
      await server.close();
    },
  };
}
