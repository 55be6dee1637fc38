import type { KubeConfig, V1Deployment, V1Node, V1Pod, V1ReplicaSet } from '@kubernetes/client-node';
import type { Controller } from '../../controllers/runtime/controller.ts';
import { Informer } from '../../controllers/runtime/informer.ts';
import type { Logger } from '../../controllers/runtime/logging.ts';
import { LocalKubelet, routePodEventsToKubelets } from './kubelet.ts';
import {
  type ClientNetwork,
  checkDataplanePrerequisites,
  cleanupStale,
  defaultNodeCidrPlan,
  NetnsDataplane,
  planNodePodCidrs,
  runNamespacePrefix,
} from './netns.ts';
import {
  defaultZones,
  kubeNow,
  type LocalNodeIdentity,
  localNodeIdentity,
  localNodeObject,
  readyCondition,
  toWire,
} from './node-object.ts';
import { KubeRest, restStatus } from './rest.ts';
import {
  LocalDeploymentController,
  LocalReplicaSetController,
  LocalScheduler,
  podIndexers,
  replicaSetIndexers,
  type WorkloadInformers,
} from './workload-controllers.ts';

/** Options of {@link LocalCluster.start}. */
export interface LocalClusterOptions {
  /** Credentials of the API server the cluster's components talk to. */
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** Simulated nodes (default 2); at most as many as the pod range holds node pod CIDRs, and 250. */
  readonly nodeCount?: number;
  /**
   * The range node pod CIDRs are carved from, like kube-controller-manager's `--cluster-cidr`
   * (default `198.18.0.0/16`). The dataplane needs it inside 198.18.0.0/16 with every node's share
   * below the LAN 198.18.255.0/24; control-plane mode takes any IPv4 range.
   */
  readonly podCidr?: string;
  /** Prefix length of each node's pod CIDR, like `--node-cidr-mask-size` (default 24). */
  readonly nodeCidrMaskSize?: number;
  /** Run pods in network namespaces (root and iproute2 needed); default false (control-plane mode). */
  readonly dataplane?: boolean;
  /**
   * Names this run's network namespaces (`portico-<runId>-…`). Namespaces a crashed run with the
   * same id left behind are removed at start; default `local`, the id `npm start` uses.
   */
  readonly runId?: string;
  readonly zones?: readonly string[];
  /** How often nodes post their Ready heartbeat (default 10 s, like the kubelet's status updates). */
  readonly heartbeatMs?: number;
}

/**
 * The local cluster on top of an API server: Node objects with a fresh Ready heartbeat, a kubelet
 * per node, the scheduler, and the ReplicaSet and Deployment controllers, all sharing one set of
 * informers. With the dataplane, each node is a network namespace, pods run in their own, and a
 * client namespace on the LAN can reach every pod.
 */
export class LocalCluster {
  readonly nodes: readonly LocalNodeIdentity[];
  /** The network namespaces, when the dataplane is on. */
  readonly dataplane: NetnsDataplane | undefined;
  /** A client namespace on the LAN, when the dataplane is on. */
  readonly client: ClientNetwork | undefined;
  readonly #rest: KubeRest;
  readonly #informers: WorkloadInformers;
  readonly #kubelets: LocalKubelet[];
  readonly #controllers: Controller[];
  readonly #heartbeat: NodeJS.Timeout;

  private constructor(parts: {
    nodes: LocalNodeIdentity[];
    dataplane: NetnsDataplane | undefined;
    client: ClientNetwork | undefined;
    rest: KubeRest;
    informers: WorkloadInformers;
    kubelets: LocalKubelet[];
    controllers: Controller[];
    heartbeat: NodeJS.Timeout;
  }) {
    this.nodes = parts.nodes;
    this.dataplane = parts.dataplane;
    this.client = parts.client;
    this.#rest = parts.rest;
    this.#informers = parts.informers;
    this.#kubelets = parts.kubelets;
    this.#controllers = parts.controllers;
    this.#heartbeat = parts.heartbeat;
  }

  /** Pods in the informer cache (for tests and benchmarks that wait on state). */
  get pods(): Informer<V1Pod> {
    return this.#informers.pods;
  }

  /**
   * Brings the cluster up: removes what an earlier run with the same id left, creates the network
   * namespaces (dataplane mode), registers the nodes, and starts informers and controllers.
   * Resolves once the informers have synced; on failure everything started is stopped again.
   */
  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const podCidrs = planNodePodCidrs(
      options.nodeCount ?? 2,
      {
        podCidr: options.podCidr ?? defaultNodeCidrPlan.podCidr,
        nodeCidrMaskSize: options.nodeCidrMaskSize ?? defaultNodeCidrPlan.nodeCidrMaskSize,
      },
      options.dataplane === true,
    );
    const identities = podCidrs.map((podCidr, i) =>
      localNodeIdentity(i, options.zones ?? defaultZones, podCidr),
    );
    const rest = new KubeRest(options.kubeConfig);
    let dataplane: NetnsDataplane | undefined;
    const cleanup: (() => Promise<void>)[] = [async () => rest.close()];
    try {
      let client: ClientNetwork | undefined;
      if (options.dataplane === true) {
        await checkDataplanePrerequisites();
        const runId = options.runId ?? 'local';
        await cleanupStale(runNamespacePrefix(runId));
        dataplane = new NetnsDataplane({ runId });
        const created = dataplane;
        cleanup.unshift(() => created.destroy());
        for (const node of identities) await dataplane.addNode(node.index, node.podCidr);
        client = await dataplane.addClient(0);
      }
      await Promise.all(identities.map((node) => registerNode(rest, node)));

      const { kubeConfig, logger } = options;
      const informers: WorkloadInformers = {
        pods: new Informer<V1Pod>({ kubeConfig, logger, path: '/api/v1/pods', indexers: podIndexers }),
        nodes: new Informer<V1Node>({ kubeConfig, logger, path: '/api/v1/nodes' }),
        replicaSets: new Informer<V1ReplicaSet>({
          kubeConfig,
          logger,
          path: '/apis/apps/v1/replicasets',
          indexers: replicaSetIndexers,
        }),
        deployments: new Informer<V1Deployment>({ kubeConfig, logger, path: '/apis/apps/v1/deployments' }),
      };
      const kubelets = identities.map(
        (node) =>
          new LocalKubelet({
            node,
            rest,
            pods: informers.pods,
            logger: options.logger,
            ...(dataplane === undefined ? {} : { dataplane }),
          }),
      );
      routePodEventsToKubelets(informers.pods, kubelets);
      const controllers = [
        new LocalScheduler(informers, rest, options.logger).controller,
        new LocalReplicaSetController(informers, rest, options.logger).controller,
        new LocalDeploymentController(informers, rest, options.logger).controller,
      ];
      const all = Object.values(informers);
      cleanup.unshift(async () => {
        await Promise.all(kubelets.map((kubelet) => kubelet.stop()));
        await Promise.all(controllers.map((controller) => controller.stop(5_000)));
        await Promise.all(all.map((i) => i.stop()));
      });
      for (const i of all) i.start();
      await Promise.all(all.map((i) => i.waitForSync()));
      for (const controller of [...controllers, ...kubelets.map((k) => k.controller)]) controller.run();
      const heartbeat = setInterval(() => {
        for (const node of identities) {
          postHeartbeat(rest, node, informers.nodes.get(node.name)).catch((error: unknown) =>
            options.logger.warn('node heartbeat failed', { node: node.name, error: String(error) }),
          );
        }
      }, options.heartbeatMs ?? 10_000);
      heartbeat.unref();
      return new LocalCluster({
        nodes: identities,
        dataplane,
        client,
        rest,
        informers,
        kubelets,
        controllers,
        heartbeat,
      });
    } catch (error) {
      for (const step of cleanup) await step().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Stops heartbeats, kubelets (their pods' servers and namespaces), controllers and informers,
   * then removes every network namespace of the run. Node and pod objects stay in the API server.
   */
  async stop(): Promise<void> {
    clearInterval(this.#heartbeat);
    try {
      await Promise.all(this.#kubelets.map((kubelet) => kubelet.stop()));
      await Promise.all(this.#controllers.map((controller) => controller.stop(5_000)));
      await Promise.all(Object.values(this.#informers).map((i) => i.stop()));
    } finally {
      await this.dataplane?.destroy();
      this.#rest.close();
    }
  }
}

/** Creates the Node (or takes over an existing one) and posts its Ready status. */
async function registerNode(rest: KubeRest, node: LocalNodeIdentity): Promise<void> {
  const object = localNodeObject(node, kubeNow());
  try {
    await rest.create('/api/v1/nodes', toWire(object));
  } catch (error) {
    if (restStatus(error) !== 409) throw error;
    await rest.mergePatch(
      `/api/v1/nodes/${node.name}`,
      toWire({ metadata: object.metadata, spec: object.spec }),
    );
  }
  // Status is a subresource: the create above may drop it, as kube-apiserver does.
  await rest.mergePatch(`/api/v1/nodes/${node.name}/status`, { status: toWire(object.status) });
}

async function postHeartbeat(
  rest: KubeRest,
  node: LocalNodeIdentity,
  cached: V1Node | undefined,
): Promise<void> {
  const now = kubeNow();
  const previous = cached?.status?.conditions?.find((c) => c.type === 'Ready');
  const since =
    previous?.status === 'True' && previous.lastTransitionTime ? new Date(previous.lastTransitionTime) : now;
  await rest.mergePatch(`/api/v1/nodes/${node.name}/status`, {
    status: { conditions: toWire([readyCondition(now, since)]) },
  });
}
