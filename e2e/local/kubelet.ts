import type { V1Pod, V1PodStatus } from '@kubernetes/client-node';
import { Controller, type ReconcileResult } from '../../controllers/runtime/controller.ts';
import type { Informer } from '../../controllers/runtime/informer.ts';
import type { Logger } from '../../controllers/runtime/logging.ts';
import { stableStringify } from './deployment.ts';
import { PodIpAllocator } from './ipam.ts';
import type { NetnsDataplane, PodServerPort, PodServerProcess } from './netns.ts';
import { kubeNow, type LocalNodeIdentity, toWire } from './node-object.ts';
import { buildRunningPodStatus } from './pod-status.ts';
import { NamespaceProbeTransport, PodReadinessProber, type ProbeTransport } from './probes.ts';
import { type KubeRest, restStatus } from './rest.ts';
import { isPodTerminal } from './scheduler.ts';

/** A pod this kubelet runs: its address, processes and readiness. */
interface RunningPod {
  readonly uid: string;
  readonly podIp: string;
  readonly startedAt: Date;
  server?: PodServerProcess;
  prober?: PodReadinessProber;
  probesReady: boolean;
}

/** Options of {@link LocalKubelet}. */
export interface LocalKubeletOptions {
  readonly node: LocalNodeIdentity;
  readonly rest: KubeRest;
  /**
   * The cluster-wide pod informer the kubelet reads pods from. Its events reach the kubelet through
   * {@link LocalKubelet.podChanged}, which {@link routePodEventsToKubelets} calls for the pods of
   * the kubelet's node.
   */
  readonly pods: Informer<V1Pod>;
  readonly logger: Logger;
  /** When set, pods get network namespaces and servers; otherwise they only get IPs and status. */
  readonly dataplane?: NetnsDataplane;
  /**
   * Keys reconciled at once (default 8 with the dataplane, where starting a pod waits on
   * namespaces and processes; 2 without, where it is one status write, so that many nodes together
   * keep their writes within the connection pool's kept-alive sockets).
   */
  readonly concurrency?: number;
}

function podPath(pod: V1Pod): string {
  return `/api/v1/namespaces/${pod.metadata?.namespace ?? 'default'}/pods/${pod.metadata?.name ?? ''}`;
}

function containerPorts(pod: V1Pod): PodServerPort[] {
  const ports: PodServerPort[] = [];
  const seen = new Set<string>();
  for (const container of pod.spec?.containers ?? []) {
    for (const port of container.ports ?? []) {
      const protocol = port.protocol ?? 'TCP';
      // SCTP has no server here; the seeds' examples only use TCP and UDP.
      if (protocol !== 'TCP' && protocol !== 'UDP') continue;
      const id = `${protocol}/${port.containerPort}`;
      if (seen.has(id)) continue;
      seen.add(id);
      ports.push({ ...(port.name ? { name: port.name } : {}), port: port.containerPort, protocol });
    }
  }
  return ports;
}

/** Whether the fields of `desired` already hold in `current` (in wire form), so no write is needed. */
function statusUpToDate(current: V1PodStatus | undefined, desired: V1PodStatus): boolean {
  const wireCurrent = (toWire(current ?? {}) ?? {}) as Record<string, unknown>;
  const wireDesired = toWire(desired) as Record<string, unknown>;
  return Object.entries(wireDesired).every(
    ([key, value]) => stableStringify(wireCurrent[key]) === stableStringify(value),
  );
}

/**
 * One node's kubelet: for each pod bound to the node it allocates the pod IP from the node's pod
 * CIDR, (with the dataplane) creates the pod's network namespace and starts its server, runs its
 * readiness probes, and keeps its status current. When a pod is being deleted it stops the server
 * (SIGTERM, then SIGKILL after the grace period), removes the namespace, releases the IP and
 * deletes the pod for good, as the real kubelet finishes graceful deletion.
 */
export class LocalKubelet {
  readonly node: LocalNodeIdentity;
  readonly controller: Controller;
  readonly #options: LocalKubeletOptions;
  readonly #ipam: PodIpAllocator;
  readonly #running = new Map<string, RunningPod>();
  readonly #prober: ProbeTransport | undefined;

  constructor(options: LocalKubeletOptions) {
    this.node = options.node;
    this.#options = options;
    this.#ipam = new PodIpAllocator(options.node.podCidr);
    const nodeNamespace = options.dataplane?.nodes.find((n) => n.index === options.node.index)?.namespace;
    this.#prober = nodeNamespace === undefined ? undefined : new NamespaceProbeTransport(nodeNamespace);
    this.controller = new Controller({
      name: `kubelet-${options.node.name}`,
      reconciler: { reconcile: (key) => this.#reconcile(key) },
      logger: options.logger,
      concurrency: options.concurrency ?? (options.dataplane === undefined ? 2 : 8),
    });
  }

  /** Tells the kubelet that pod `key`, bound to its node now or before, changed or went away. */
  podChanged(key: string): void {
    this.controller.enqueue(key);
  }

  /** Pods with an allocated IP on this node. */
  get runningPods(): number {
    return this.#running.size;
  }

  async #teardown(key: string, graceMs: number): Promise<void> {
    const running = this.#running.get(key);
    if (running === undefined) return;
    running.prober?.stop();
    await running.server?.stop(graceMs);
    await this.#options.dataplane?.removePod(key, graceMs);
    this.#ipam.release(key);
    this.#running.delete(key);
  }

  async #start(key: string, pod: V1Pod): Promise<RunningPod> {
    const uid = pod.metadata?.uid ?? '';
    const previousIp = pod.status?.podIP;
    let podIp: string;
    if (previousIp !== undefined && this.#ipam.holder(previousIp) === undefined) {
      try {
        this.#ipam.claim(key, previousIp);
        podIp = previousIp;
      } catch {
        podIp = this.#ipam.allocate(key);
      }
    } else {
      podIp = this.#ipam.allocate(key);
    }
    const running: RunningPod = { uid, podIp, startedAt: kubeNow(), probesReady: this.#prober === undefined };
    this.#running.set(key, running);
    const dataplane = this.#options.dataplane;
    if (dataplane !== undefined) {
      try {
        await this.#startInDataplane(dataplane, key, pod, running);
      } catch (error) {
        // A half-built pod would look running forever; undo it so the retry starts clean.
        await this.#teardown(key, 0);
        throw error;
      }
    }
    return running;
  }

  async #startInDataplane(
    dataplane: NetnsDataplane,
    key: string,
    pod: V1Pod,
    running: RunningPod,
  ): Promise<void> {
    await dataplane.addPod(this.node.index, key, running.podIp);
    running.server = await dataplane.startPodServer(key, pod.metadata?.name ?? '', containerPorts(pod));
    if (this.#prober === undefined) return;
    running.prober = new PodReadinessProber({
      podIp: running.podIp,
      containers: pod.spec?.containers ?? [],
      transport: this.#prober,
      onReadinessChange: (ready) => {
        running.probesReady = ready;
        this.controller.enqueue(key);
      },
    });
  }

  async #reconcile(key: string): Promise<ReconcileResult | undefined> {
    const pod = this.#options.pods.get(key);
    const running = this.#running.get(key);
    const mine = pod !== undefined && pod.spec?.nodeName === this.node.name;
    if (running !== undefined && (!mine || running.uid !== pod?.metadata?.uid || isPodTerminal(pod))) {
      await this.#teardown(key, 0);
    }
    if (!mine || isPodTerminal(pod)) return undefined;
    if (pod.metadata?.deletionTimestamp !== undefined) {
      const graceSeconds =
        pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
      await this.#teardown(key, graceSeconds * 1000);
      await this.#options.rest.delete(podPath(pod), { gracePeriodSeconds: 0, uid: pod.metadata.uid ?? '' });
      return undefined;
    }
    const current = this.#running.get(key) ?? (await this.#start(key, pod));
    const status = buildRunningPodStatus(pod, {
      podIp: current.podIp,
      hostIp: this.node.internalIp,
      startedAt: current.startedAt,
      probesReady: current.probesReady,
      now: kubeNow(),
    });
    if (!statusUpToDate(pod.status, status)) {
      try {
        await this.#options.rest.mergePatch(`${podPath(pod)}/status`, { status: toWire(status) });
      } catch (error) {
        // Deleted meanwhile: the delete event brings the key back and the teardown happens then.
        if (restStatus(error) !== 404) throw error;
      }
    }
    return undefined;
  }

  /** Stops reconciling, then every pod's prober, server and namespace. */
  async stop(): Promise<void> {
    await this.controller.stop(5_000);
    await Promise.all([...this.#running.keys()].map((key) => this.#teardown(key, 1_000)));
    await this.#prober?.close();
  }
}

/**
 * Passes each pod event to the kubelet of the pod's node, and to the kubelet of the node the pod
 * was last seen on when that differs (a pod deleted and recreated under the same name on another
 * node, with the delete lost in a relist), so the old kubelet tears it down. One lookup per event,
 * where every kubelet checking every event cost O(nodes) per event.
 */
export function routePodEventsToKubelets(pods: Informer<V1Pod>, kubelets: readonly LocalKubelet[]): void {
  const byNode = new Map(kubelets.map((kubelet) => [kubelet.node.name, kubelet]));
  const lastNodeOf = new Map<string, string>();
  const route = (pod: V1Pod, deleted: boolean): void => {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const nodeName = pod.spec?.nodeName || undefined;
    const previous = lastNodeOf.get(key);
    if (previous !== undefined && previous !== nodeName) byNode.get(previous)?.podChanged(key);
    if (nodeName !== undefined) byNode.get(nodeName)?.podChanged(key);
    if (deleted || nodeName === undefined) lastNodeOf.delete(key);
    else lastNodeOf.set(key, nodeName);
  };
  pods.addEventHandler({
    onAdd: (pod) => route(pod, false),
    onUpdate: (_old, pod) => route(pod, false),
    onDelete: (pod) => route(pod, true),
  });
}
