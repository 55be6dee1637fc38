/**
 * A local API server with the LoadBalancerIPPool CRD, some pools and an in-process
 * LoadBalancer controller: shared by the controller's integration tests and bench/loadbalancer.ts.
 */
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type V1CustomResourceDefinition,
  type V1Service,
} from '@kubernetes/client-node';
import { DEFAULT_LOAD_BALANCER_CLASS } from '../../api/labels.ts';
import {
  LOAD_BALANCER_IP_POOL_API_VERSION,
  LOAD_BALANCER_IP_POOL_CRD,
  LOAD_BALANCER_IP_POOL_KIND,
  LOAD_BALANCER_IP_POOL_PLURAL,
  LOAD_BALANCER_IP_POOL_VERSION,
  type LoadBalancerIPPoolSpec,
  PORTICO_GROUP,
} from '../../api/loadbalancerippool.ts';
import type { ApiServer } from '../../e2e/apiserver/index.ts';
import { EventRecorder } from '../runtime/events.ts';
import type { Logger } from '../runtime/logging.ts';
import { kubeConfigFor, startTestApiServer, testLogger } from '../runtime/testing/harness.ts';
import { LoadBalancerController } from './controller.ts';

/** A running server, clients and controller; {@link close} tears everything down. */
export interface LoadBalancerTestCluster {
  readonly server: ApiServer;
  readonly kubeConfig: KubeConfig;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  /** The current controller; {@link startController} replaces it. */
  controller: LoadBalancerController;
  /** Stops the controller and its informers, leaving the server up. */
  stopController(): Promise<void>;
  /** Starts a fresh controller (state rebuilt from the server) after {@link stopController}. */
  startController(): Promise<void>;
  /** Stops the controller and the server. */
  close(): Promise<void>;
}

/** Creates (or replaces the spec of) a pool. */
export async function createPool(
  custom: CustomObjectsApi,
  name: string,
  spec: LoadBalancerIPPoolSpec,
): Promise<void> {
  await custom.createClusterCustomObject({
    group: PORTICO_GROUP,
    version: LOAD_BALANCER_IP_POOL_VERSION,
    plural: LOAD_BALANCER_IP_POOL_PLURAL,
    body: {
      apiVersion: LOAD_BALANCER_IP_POOL_API_VERSION,
      kind: LOAD_BALANCER_IP_POOL_KIND,
      metadata: { name },
      spec,
    },
  });
}

/** A LoadBalancer Service manifest. */
export function loadBalancerService(
  name: string,
  options: {
    annotations?: Record<string, string>;
    ports?: { port: number; protocol?: string }[];
    loadBalancerClass?: string;
    namespace?: string;
  } = {},
): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: options.namespace ?? 'default', annotations: options.annotations },
    spec: {
      type: 'LoadBalancer',
      selector: { app: name },
      ports: (options.ports ?? [{ port: 80 }]).map((port) => ({
        name: `p${port.port}-${(port.protocol ?? 'TCP').toLowerCase()}`,
        port: port.port,
        protocol: port.protocol ?? 'TCP',
      })),
      ...(options.loadBalancerClass !== undefined ? { loadBalancerClass: options.loadBalancerClass } : {}),
    },
  };
}

async function startController(kubeConfig: KubeConfig, logger: Logger): Promise<LoadBalancerController> {
  const controller = new LoadBalancerController({
    kubeConfig,
    logger,
    loadBalancerClass: DEFAULT_LOAD_BALANCER_CLASS,
    events: new EventRecorder({ kubeConfig, component: 'loadbalancer-controller', logger }),
  });
  for (const informer of controller.informers) informer.start();
  await Promise.all(controller.informers.map((informer) => informer.waitForSync()));
  controller.run();
  return controller;
}

/** Starts the server, installs the CRD and `pools`, and runs a controller. */
export async function startLoadBalancerTestCluster(
  pools: Record<string, LoadBalancerIPPoolSpec>,
  logger: Logger = testLogger(),
): Promise<LoadBalancerTestCluster> {
  const server = await startTestApiServer();
  try {
    const kubeConfig = kubeConfigFor(server.kubeconfigPath);
    const crd = structuredClone(LOAD_BALANCER_IP_POOL_CRD) as unknown as V1CustomResourceDefinition;
    await kubeConfig.makeApiClient(ApiextensionsV1Api).createCustomResourceDefinition({ body: crd });
    await server.controllersIdle();
    const custom = kubeConfig.makeApiClient(CustomObjectsApi);
    for (const [name, spec] of Object.entries(pools)) await createPool(custom, name, spec);
    const stopInformers = async (controller: LoadBalancerController) => {
      await controller.stop(5_000);
      await Promise.all(controller.informers.map((informer) => informer.stop()));
    };
    let stopped = false;
    const cluster: LoadBalancerTestCluster = {
      server,
      kubeConfig,
      core: kubeConfig.makeApiClient(CoreV1Api),
      custom,
      controller: await startController(kubeConfig, logger),
      async stopController() {
        stopped = true;
        await stopInformers(cluster.controller);
      },
      async startController() {
        cluster.controller = await startController(kubeConfig, logger);
        stopped = false;
      },
      async close() {
        if (!stopped) await stopInformers(cluster.controller);
        await server.close();
      },
    };
    return cluster;
  } catch (error) {
    await server.close();
    throw error;
  }
}
