import type { V1OwnerReference, V1Pod, V1ReplicaSet, V1ReplicaSetStatus } from '@kubernetes/client-node';
import { selectorMatches } from './labels.ts';
import { isPodTerminal, timestampMs } from './scheduler.ts';

/** What one ReplicaSet reconcile should write. */
export interface ReplicaSetPlan {
  /** Pods to create (with generateName, so the API server names them). */
  readonly create: V1Pod[];
  /** Pods to delete, in the order upstream would pick them. */
  readonly delete: V1Pod[];
  /** The status to write if it differs from the current one. */
  readonly status: V1ReplicaSetStatus;
}

/** The same per-sync cap upstream's ReplicaSet controller uses, so one sync never floods the API. */
export const burstReplicas = 500;

/** Writes of one sync in flight at once, so a few busy ReplicaSets stay within the kept-alive sockets. */
export const maxWriteBatch = 32;

/**
 * Batch sizes for `total` pod creates in upstream's slow start: 1, 2, 4, … doubling (here capped
 * at {@link maxWriteBatch}). The caller stops after a batch with a failure, so a create that fails
 * for every pod (quota, admission) costs one request, not `total`.
 */
export function slowStartBatchSizes(total: number): number[] {
  const sizes: number[] = [];
  let remaining = total;
  for (let size = 1; remaining > 0; size = Math.min(size * 2, maxWriteBatch)) {
    const batch = Math.min(size, remaining);
    sizes.push(batch);
    remaining -= batch;
  }
  return sizes;
}

/** True when the pod's Ready condition is True. */
export function isPodReady(pod: V1Pod): boolean {
  return readyCondition(pod)?.status === 'True';
}

function readyCondition(pod: V1Pod) {
  return pod.status?.conditions?.find((c) => c.type === 'Ready');
}

/** True when the pod has been Ready for at least `minReadySeconds` at `nowMs`. */
export function isPodAvailable(pod: V1Pod, minReadySeconds: number, nowMs: number): boolean {
  const condition = readyCondition(pod);
  if (condition?.status !== 'True') return false;
  if (minReadySeconds <= 0) return true;
  return timestampMs(condition.lastTransitionTime) + minReadySeconds * 1000 <= nowMs;
}

/** The controller owner reference of an object, if it has one. */
export function controllerOf(pod: V1Pod): V1OwnerReference | undefined {
  return pod.metadata?.ownerReferences?.find((ref) => ref.controller === true);
}

/** Pods controlled by the ReplicaSet (by controller ownerReference uid) that still count toward replicas. */
export function activePodsOf(replicaSet: V1ReplicaSet, pods: readonly V1Pod[]): V1Pod[] {
  const uid = replicaSet.metadata?.uid;
  return pods.filter(
    (pod) =>
      controllerOf(pod)?.uid === uid &&
      uid !== undefined &&
      pod.metadata?.deletionTimestamp === undefined &&
      !isPodTerminal(pod),
  );
}

const phaseRank: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

/**
 * Orders pods so the first are the best to delete, following upstream's ranking of active pods:
 * unscheduled before scheduled, Pending before Unknown before Running, not ready before ready,
 * ready for less time before ready for longer, then newest before oldest.
 */
export function compareForDeletion(a: V1Pod, b: V1Pod): number {
  const scheduled = (pod: V1Pod) => (pod.spec?.nodeName ? 1 : 0);
  if (scheduled(a) !== scheduled(b)) return scheduled(a) - scheduled(b);
  const phase = (pod: V1Pod) => phaseRank[pod.status?.phase ?? 'Pending'] ?? 0;
  if (phase(a) !== phase(b)) return phase(a) - phase(b);
  const ready = (pod: V1Pod) => (isPodReady(pod) ? 1 : 0);
  if (ready(a) !== ready(b)) return ready(a) - ready(b);
  if (isPodReady(a)) {
    const readySince = (pod: V1Pod) => timestampMs(readyCondition(pod)?.lastTransitionTime);
    if (readySince(a) !== readySince(b)) return readySince(b) - readySince(a);
  }
  const created = (pod: V1Pod) => timestampMs(pod.metadata?.creationTimestamp);
  if (created(a) !== created(b)) return created(b) - created(a);
  return (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');
}

/** A new pod from the ReplicaSet's template, controlled by it. */
export function podFromTemplate(replicaSet: V1ReplicaSet): V1Pod {
  const template = replicaSet.spec?.template;
  const name = replicaSet.metadata?.name ?? '';
  const ownerReference: V1OwnerReference = {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    name,
    uid: replicaSet.metadata?.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${name}-`,
      namespace: replicaSet.metadata?.namespace ?? 'default',
      labels: { ...(template?.metadata?.labels ?? {}) },
      annotations: { ...(template?.metadata?.annotations ?? {}) },
      ownerReferences: [ownerReference],
    },
    spec: structuredClone(template?.spec ?? { containers: [] }),
  };
}

/**
 * Plans one ReplicaSet sync: creates pods from the template while fewer than `spec.replicas` are
 * active, deletes the best candidates while more are, at most {@link burstReplicas} either way,
 * and computes status from the pods as they are now (the next sync sees the effect of the writes).
 */
export function planReplicaSet(
  replicaSet: V1ReplicaSet,
  pods: readonly V1Pod[],
  nowMs: number,
): ReplicaSetPlan {
  const active = activePodsOf(replicaSet, pods);
  const wanted = replicaSet.spec?.replicas ?? 1;
  const difference = active.length - wanted;
  const create: V1Pod[] = [];
  const remove: V1Pod[] = [];
  if (difference < 0) {
    for (let i = 0; i < Math.min(-difference, burstReplicas); i++) create.push(podFromTemplate(replicaSet));
  } else if (difference > 0) {
    remove.push(...[...active].sort(compareForDeletion).slice(0, Math.min(difference, burstReplicas)));
  }
  const minReadySeconds = replicaSet.spec?.minReadySeconds ?? 0;
  const templateLabels = replicaSet.spec?.template?.metadata?.labels ?? {};
  const status: V1ReplicaSetStatus = {
    replicas: active.length,
    fullyLabeledReplicas: active.filter((pod) =>
      Object.entries(templateLabels).every(([key, value]) => pod.metadata?.labels?.[key] === value),
    ).length,
    readyReplicas: active.filter(isPodReady).length,
    availableReplicas: active.filter((pod) => isPodAvailable(pod, minReadySeconds, nowMs)).length,
    ...(replicaSet.metadata?.generation === undefined
      ? {}
      : { observedGeneration: replicaSet.metadata.generation }),
  };
  return { create, delete: remove, status };
}

/**
 * Pods the ReplicaSet should adopt: matching its selector, not terminal or deleting, and with no
 * controller yet. Upstream adopts such orphans by adding an ownerReference.
 */
export function orphansToAdopt(replicaSet: V1ReplicaSet, pods: readonly V1Pod[]): V1Pod[] {
  const namespace = replicaSet.metadata?.namespace ?? 'default';
  return pods.filter(
    (pod) =>
      (pod.metadata?.namespace ?? 'default') === namespace &&
      controllerOf(pod) === undefined &&
      pod.metadata?.deletionTimestamp === undefined &&
      !isPodTerminal(pod) &&
      selectorMatches(replicaSet.spec?.selector, pod.metadata?.labels),
  );
}
