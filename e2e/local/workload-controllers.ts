import type { V1Deployment, V1Node, V1ObjectMeta, V1Pod, V1ReplicaSet } from '@kubernetes/client-node';
import { Controller, type ReconcileResult } from '../../controllers/runtime/controller.ts';
import { type Informer, splitObjectKey } from '../../controllers/runtime/informer.ts';
import type { Logger } from '../../controllers/runtime/logging.ts';
import { planDeployment, stableStringify } from './deployment.ts';
import { kubeNow, toWire } from './node-object.ts';
import {
  controllerOf,
  maxWriteBatch,
  orphansToAdopt,
  planReplicaSet,
  slowStartBatchSizes,
} from './replicaset.ts';
import { type KubeRest, restStatus } from './rest.ts';
import { isPodTerminal, planScheduling } from './scheduler.ts';

/** The informers the workload controllers read from. */
export interface WorkloadInformers {
  readonly pods: Informer<V1Pod>;
  readonly nodes: Informer<V1Node>;
  readonly replicaSets: Informer<V1ReplicaSet>;
  readonly deployments: Informer<V1Deployment>;
}

function keyOf(object: { metadata?: { namespace?: string; name?: string } }): string {
  return `${object.metadata?.namespace ?? 'default'}/${object.metadata?.name ?? ''}`;
}

function ownerKey(object: { metadata?: V1ObjectMeta }, kind: string): string | undefined {
  const owner = object.metadata?.ownerReferences?.find((ref) => ref.controller === true && ref.kind === kind);
  return owner === undefined ? undefined : `${object.metadata?.namespace ?? 'default'}/${owner.name}`;
}

/** Pod index: the uid of the pod's controller (its ReplicaSet), so a ReplicaSet finds its pods at once. */
export const podsByControllerUid = 'controller-uid';

/** Pod index: the namespace of every live pod without a controller, the candidates for adoption. */
export const orphanPodsByNamespace = 'orphans';

/** The pod informer indexes the workload controllers read; pass them when creating the informer. */
export const podIndexers: Record<string, (pod: V1Pod) => readonly string[]> = {
  [orphanPodsByNamespace]: (pod) =>
    controllerOf(pod) === undefined && pod.metadata?.deletionTimestamp === undefined && !isPodTerminal(pod)
      ? [pod.metadata?.namespace ?? 'default']
      : [],
  [podsByControllerUid]: (pod) => {
    const uid = controllerOf(pod)?.uid;
    return uid === undefined ? [] : [uid];
  },
};

/** ReplicaSet index: the uid of the ReplicaSet's controller (its Deployment). */
export const replicaSetsByControllerUid = 'controller-uid';

/** The ReplicaSet informer indexes the Deployment controller reads; pass them when creating the informer. */
export const replicaSetIndexers: Record<string, (rs: V1ReplicaSet) => readonly string[]> = {
  [replicaSetsByControllerUid]: (rs) => {
    const uid = rs.metadata?.ownerReferences?.find((ref) => ref.controller === true)?.uid;
    return uid === undefined ? [] : [uid];
  },
};

/** The node a pod occupies: the one it is bound to, unless it is being deleted or has finished. */
export function nodeOccupiedBy(pod: V1Pod): string | undefined {
  const nodeName = pod.spec?.nodeName;
  return nodeName && pod.metadata?.deletionTimestamp === undefined && !isPodTerminal(pod)
    ? nodeName
    : undefined;
}

/** True when `desired` (in wire form) differs from `current` in any field `desired` sets. */
function differs(current: unknown, desired: unknown): boolean {
  const wireCurrent = (toWire(current ?? {}) ?? {}) as Record<string, unknown>;
  const wireDesired = toWire(desired) as Record<string, unknown>;
  return Object.entries(wireDesired).some(
    ([key, value]) => stableStringify(wireCurrent[key]) !== stableStringify(value),
  );
}

/**
 * Binds pending pods to nodes with {@link planScheduling}. Bindings it made but the informer has
 * not shown yet are "assumed" (as upstream's scheduler cache does), so a burst of pods spreads
 * instead of piling onto the node that looked emptiest before the burst.
 *
 * It binds through the `pods/binding` subresource, as upstream's scheduler does: the API server
 * sets `spec.nodeName` and the PodScheduled condition in one write, and answers 409 Conflict when
 * the pod is bound already.
 */
export class LocalScheduler {
  readonly controller: Controller;
  readonly #informers: WorkloadInformers;
  readonly #rest: KubeRest;
  /** Pending pods bound by this scheduler that the informer still shows unbound, and their node. */
  readonly #assumed = new Map<string, string>();
  /**
   * Pods per node, bound (as the informer shows them) plus assumed. Kept up to date from events,
   * so a bind costs O(nodes) however many pods the cluster holds; counting the node index on every
   * bind made a burst of n pods cost O(n²).
   */
  readonly #podsPerNode = new Map<string, number>();
  /** The node each counted pod occupies, so an update or delete takes back the right count. */
  readonly #counted = new Map<string, string>();

  constructor(informers: WorkloadInformers, rest: KubeRest, logger: Logger) {
    this.#informers = informers;
    this.#rest = rest;
    // Planning and assuming happen without an await between them, so parallel binds never see a
    // stale count; only the API round trips overlap. Upstream binds asynchronously, one goroutine
    // per pod; with only 8 binds in flight, a burst of pod creates from the ReplicaSet controller
    // held most of the API server's attention and scheduling fell 10× behind creation at 100k pods.
    this.controller = new Controller({
      name: 'scheduler',
      reconciler: { reconcile: (key) => this.#reconcile(key) },
      logger,
      concurrency: 32,
    });
    const observe = (pod: V1Pod): void => {
      const key = keyOf(pod);
      this.#count(key, nodeOccupiedBy(pod));
      if (!pod.spec?.nodeName) this.controller.enqueue(key);
      else this.#forgetAssumed(key);
    };
    informers.pods.addEventHandler({
      onAdd: observe,
      onUpdate: (_old, pod) => observe(pod),
      onDelete: (pod) => {
        const key = keyOf(pod);
        this.#count(key, undefined);
        this.#forgetAssumed(key);
      },
    });
  }

  /** Moves pod `key`'s count to `nodeName` (none: the pod no longer occupies a node). */
  #count(key: string, nodeName: string | undefined): void {
    const previous = this.#counted.get(key);
    if (previous === nodeName) return;
    if (previous !== undefined) {
      this.#counted.delete(key);
      this.#addToNode(previous, -1);
    }
    if (nodeName !== undefined) {
      this.#counted.set(key, nodeName);
      this.#addToNode(nodeName, 1);
    }
  }

  #addToNode(nodeName: string, delta: number): void {
    const count = (this.#podsPerNode.get(nodeName) ?? 0) + delta;
    if (count === 0) this.#podsPerNode.delete(nodeName);
    else this.#podsPerNode.set(nodeName, count);
  }

  #assume(key: string, nodeName: string): void {
    this.#assumed.set(key, nodeName);
    this.#addToNode(nodeName, 1);
  }

  #forgetAssumed(key: string): void {
    const nodeName = this.#assumed.get(key);
    if (nodeName === undefined) return;
    this.#assumed.delete(key);
    this.#addToNode(nodeName, -1);
  }

  async #reconcile(key: string): Promise<ReconcileResult | undefined> {
    const pod = this.#informers.pods.get(key);
    if (pod === undefined || pod.spec?.nodeName || pod.metadata?.deletionTimestamp !== undefined) {
      this.#forgetAssumed(key);
      return undefined;
    }
    if (this.#assumed.has(key)) return undefined;
    const nodes = this.#informers.nodes.list();
    const boundPerNode = new Map<string, number>();
    for (const node of nodes) {
      const nodeName = node.metadata?.name ?? '';
      boundPerNode.set(nodeName, this.#podsPerNode.get(nodeName) ?? 0);
    }
    const plan = planScheduling([pod], nodes, boundPerNode);
    const binding = plan.bindings.find((b) => `${b.namespace}/${b.name}` === key);
    const { namespace, name } = splitObjectKey(key);
    if (binding === undefined) {
      const message = plan.unschedulable.find((u) => `${u.namespace}/${u.name}` === key)?.message ?? '';
      const condition = { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message };
      if (differs(pod.status?.conditions?.[0] ?? {}, condition)) {
        await this.#rest.mergePatch(`/api/v1/namespaces/${namespace}/pods/${name}/status`, {
          status: { phase: 'Pending', conditions: [{ ...condition, lastTransitionTime: toWire(kubeNow()) }] },
        });
      }
      // Nodes turning ready don't enqueue pods; a periodic retry is simpler and cheap at our scale.
      return { requeueAfter: 2_000 };
    }
    this.#assume(key, binding.nodeName);
    try {
      await this.#rest.create(`/api/v1/namespaces/${namespace}/pods/${name}/binding`, {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name, namespace },
        target: { apiVersion: 'v1', kind: 'Node', name: binding.nodeName },
      });
    } catch (error) {
      this.#forgetAssumed(key);
      // Gone, or bound meanwhile by someone else: the informer brings the pod's new state.
      const status = restStatus(error);
      if (status === 404 || status === 409) return undefined;
      throw error;
    }
    return undefined;
  }
}

/** Writes this controller made that the informer has not shown yet, per ReplicaSet. */
interface ReplicaSetExpectations {
  readonly created: Map<string, V1Pod>;
  readonly deleted: Set<string>;
}

/**
 * Keeps each ReplicaSet's pods at `spec.replicas` with {@link planReplicaSet} and writes its
 * status. Pods it created or deleted are remembered until the informer reflects them (upstream's
 * expectations), so a reconcile running before the cache catches up neither creates nor deletes
 * twice.
 */
export class LocalReplicaSetController {
  readonly controller: Controller;
  readonly #informers: WorkloadInformers;
  readonly #rest: KubeRest;
  readonly #expectations = new Map<string, ReplicaSetExpectations>();

  constructor(informers: WorkloadInformers, rest: KubeRest, logger: Logger) {
    this.#informers = informers;
    this.#rest = rest;
    this.controller = new Controller({
      name: 'replicaset',
      reconciler: { reconcile: (key) => this.#reconcile(key) },
      logger,
      concurrency: 4,
    });
    // Every pod of a burst changes several times; one reconcile per ReplicaSet per 100 ms sees them all.
    const enqueueOwner = (pod: V1Pod): void => {
      const key = ownerKey(pod, 'ReplicaSet');
      if (key !== undefined) {
        this.controller.enqueueAfter(key, 100);
        return;
      }
      // An orphan: every ReplicaSet of its namespace whose selector matches may adopt it.
      for (const rs of informers.replicaSets.listInNamespace(pod.metadata?.namespace ?? 'default')) {
        if (orphansToAdopt(rs, [pod]).length > 0) this.controller.enqueueAfter(keyOf(rs), 100);
      }
    };
    informers.pods.addEventHandler({
      onAdd: enqueueOwner,
      onUpdate: (_old, pod) => enqueueOwner(pod),
      onDelete: enqueueOwner,
    });
    const enqueueSelf = (rs: V1ReplicaSet): void => this.controller.enqueue(keyOf(rs));
    informers.replicaSets.addEventHandler({ onAdd: enqueueSelf, onUpdate: (_old, rs) => enqueueSelf(rs) });
  }

  async #reconcile(key: string): Promise<ReconcileResult | undefined> {
    const replicaSet = this.#informers.replicaSets.get(key);
    if (replicaSet === undefined || replicaSet.metadata?.deletionTimestamp !== undefined) {
      this.#expectations.delete(key);
      return undefined;
    }
    const { namespace, name } = splitObjectKey(key);
    const uid = replicaSet.metadata?.uid ?? '';
    const owned = this.#informers.pods.byIndex(podsByControllerUid, uid);
    const expectations = this.#expectations.get(key) ?? { created: new Map(), deleted: new Set() };
    this.#expectations.set(key, expectations);
    for (const created of expectations.created.keys()) {
      if (this.#informers.pods.get(`${namespace}/${created}`) !== undefined)
        expectations.created.delete(created);
    }
    for (const deleted of expectations.deleted) {
      const pod = this.#informers.pods.get(`${namespace}/${deleted}`);
      if (pod === undefined || pod.metadata?.deletionTimestamp !== undefined)
        expectations.deleted.delete(deleted);
    }
    const adopted = await this.#adoptOrphans(replicaSet, namespace);
    const pods = [
      ...owned.filter((pod) => !expectations.deleted.has(pod.metadata?.name ?? '')),
      ...adopted,
      ...expectations.created.values(),
    ];
    const plan = planReplicaSet(replicaSet, pods, Date.now());
    const podsPath = `/api/v1/namespaces/${namespace}/pods`;
    const errors: unknown[] = [];
    let next = 0;
    for (const size of slowStartBatchSizes(plan.create.length)) {
      const batch = plan.create.slice(next, next + size);
      next += size;
      await Promise.all(
        batch.map(async (pod) => {
          try {
            const created = await this.#rest.create(podsPath, pod);
            expectations.created.set(created.metadata?.name ?? '', created);
          } catch (error) {
            errors.push(error);
          }
        }),
      );
      if (errors.length > 0) break;
    }
    for (let start = 0; start < plan.delete.length; start += maxWriteBatch) {
      await Promise.all(
        plan.delete.slice(start, start + maxWriteBatch).map(async (pod) => {
          const podName = pod.metadata?.name ?? '';
          expectations.deleted.add(podName);
          try {
            await this.#rest.delete(`${podsPath}/${podName}`);
          } catch (error) {
            expectations.deleted.delete(podName);
            errors.push(error);
          }
        }),
      );
    }
    if (errors.length > 0)
      throw new AggregateError(errors, `replicaset ${key}: ${errors.length} pod writes failed`);
    if (differs(replicaSet.status, plan.status)) {
      await this.#rest.mergePatch(`/apis/apps/v1/namespaces/${namespace}/replicasets/${name}/status`, {
        status: plan.status,
      });
    }
    return undefined;
  }

  /**
   * Claims live pods without a controller that match the selector, as upstream does, and returns
   * them with the new owner so this sync already counts them. A pod deleted meanwhile is skipped.
   */
  async #adoptOrphans(replicaSet: V1ReplicaSet, namespace: string): Promise<V1Pod[]> {
    const orphans = orphansToAdopt(
      replicaSet,
      this.#informers.pods.byIndex(orphanPodsByNamespace, namespace),
    );
    const ownerReference = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      name: replicaSet.metadata?.name ?? '',
      uid: replicaSet.metadata?.uid ?? '',
      controller: true,
      blockOwnerDeletion: true,
    };
    const adopted: V1Pod[] = [];
    for (const orphan of orphans) {
      const ownerReferences = [...(orphan.metadata?.ownerReferences ?? []), ownerReference];
      try {
        adopted.push(
          await this.#rest.mergePatch<V1Pod>(
            `/api/v1/namespaces/${namespace}/pods/${orphan.metadata?.name ?? ''}`,
            { metadata: { ownerReferences, uid: orphan.metadata?.uid } },
          ),
        );
      } catch (error) {
        if (restStatus(error) !== 404) throw error;
      }
    }
    return adopted;
  }
}

/**
 * Drives each Deployment through its ReplicaSets with {@link planDeployment}: creates the
 * ReplicaSet of the current template, scales new and old ones for the rolling update, and writes
 * the Deployment's status. ReplicaSet names are the template hash, so a create that raced with an
 * earlier one answers AlreadyExists and is treated as done.
 */
export class LocalDeploymentController {
  readonly controller: Controller;
  readonly #informers: WorkloadInformers;
  readonly #rest: KubeRest;

  constructor(informers: WorkloadInformers, rest: KubeRest, logger: Logger) {
    this.#informers = informers;
    this.#rest = rest;
    this.controller = new Controller({
      name: 'deployment',
      reconciler: { reconcile: (key) => this.#reconcile(key) },
      logger,
    });
    const enqueueSelf = (deployment: V1Deployment): void => this.controller.enqueue(keyOf(deployment));
    informers.deployments.addEventHandler({ onAdd: enqueueSelf, onUpdate: (_old, d) => enqueueSelf(d) });
    const enqueueOwner = (rs: V1ReplicaSet): void => {
      const key = ownerKey(rs, 'Deployment');
      if (key !== undefined) this.controller.enqueue(key);
    };
    informers.replicaSets.addEventHandler({
      onAdd: enqueueOwner,
      onUpdate: (_old, rs) => enqueueOwner(rs),
      onDelete: enqueueOwner,
    });
  }

  async #reconcile(key: string): Promise<ReconcileResult | undefined> {
    const deployment = this.#informers.deployments.get(key);
    if (deployment === undefined || deployment.metadata?.deletionTimestamp !== undefined) return undefined;
    const { namespace, name } = splitObjectKey(key);
    const owned = this.#informers.replicaSets.byIndex(
      replicaSetsByControllerUid,
      deployment.metadata?.uid ?? '',
    );
    const plan = planDeployment(deployment, owned, kubeNow().getTime());
    const replicaSetsPath = `/apis/apps/v1/namespaces/${namespace}/replicasets`;
    if (plan.createReplicaSet !== undefined) {
      await this.#rest.createUnlessExists(replicaSetsPath, plan.createReplicaSet);
    }
    for (const change of plan.scale) {
      await this.#rest.mergePatch(`${replicaSetsPath}/${change.name}`, {
        spec: { replicas: change.replicas },
      });
    }
    if (differs(deployment.status, plan.status)) {
      await this.#rest.mergePatch(`/apis/apps/v1/namespaces/${namespace}/deployments/${name}/status`, {
        status: toWire(plan.status),
      });
    }
    return undefined;
  }
}
