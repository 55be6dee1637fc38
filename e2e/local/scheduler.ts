import type { V1Node, V1Pod } from '@kubernetes/client-node';

/** A decision to bind pod `namespace/name` to `nodeName` (a `pods/binding` write). */
export interface PodBinding {
  readonly namespace: string;
  readonly name: string;
  readonly nodeName: string;
}

/** A pod no node can take, with the message upstream puts in the PodScheduled=False condition. */
export interface UnschedulablePod {
  readonly namespace: string;
  readonly name: string;
  readonly message: string;
}

/** What one scheduling pass decides. */
export interface SchedulingPlan {
  readonly bindings: PodBinding[];
  readonly unschedulable: UnschedulablePod[];
}

/** True when the node reports Ready=True. */
export function isNodeReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** True when the pod has finished and no longer occupies its node. */
export function isPodTerminal(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

function matchesNodeSelector(pod: V1Pod, node: V1Node): boolean {
  const selector = pod.spec?.nodeSelector ?? {};
  const labels = node.metadata?.labels ?? {};
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

type Rejection = 'unschedulable' | 'notReady' | 'selector';

const rejectionText: Record<Rejection, string> = {
  unschedulable: 'node(s) were unschedulable',
  notReady: 'node(s) were not ready',
  selector: "node(s) didn't match Pod's node affinity/selector",
};

function rejectionOf(pod: V1Pod, node: V1Node): Rejection | undefined {
  if (node.spec?.unschedulable === true) return 'unschedulable';
  if (!isNodeReady(node)) return 'notReady';
  if (!matchesNodeSelector(pod, node)) return 'selector';
  return undefined;
}

function podKey(pod: V1Pod): string {
  return `${pod.metadata?.namespace ?? 'default'}/${pod.metadata?.name ?? ''}`;
}

/**
 * Binds every pod without `spec.nodeName` to a feasible node: schedulable, Ready, and matching the
 * pod's nodeSelector. Among feasible nodes it picks the one running the fewest pods (counting the
 * bindings made earlier in this pass), ties broken by node name so the plan is deterministic.
 * Pods that already name a node were placed by their author (or an earlier pass) and are only
 * counted. Pods being deleted are neither bound nor counted. Pods are taken oldest first.
 *
 * `boundPodsPerNode`, when given, counts bound pods not passed in `pods`, so a caller with an index
 * of pods by node can schedule one pod without handing over every pod in the cluster.
 */
export function planScheduling(
  pods: readonly V1Pod[],
  nodes: readonly V1Node[],
  boundPodsPerNode?: ReadonlyMap<string, number>,
): SchedulingPlan {
  const podsPerNode = new Map<string, number>();
  for (const node of nodes) {
    const name = node.metadata?.name ?? '';
    podsPerNode.set(name, boundPodsPerNode?.get(name) ?? 0);
  }
  const pending: V1Pod[] = [];
  for (const pod of pods) {
    if (isPodTerminal(pod) || pod.metadata?.deletionTimestamp !== undefined) continue;
    const nodeName = pod.spec?.nodeName;
    if (nodeName === undefined || nodeName === '') pending.push(pod);
    else podsPerNode.set(nodeName, (podsPerNode.get(nodeName) ?? 0) + 1);
  }
  pending.sort(
    (a, b) =>
      timestampMs(a.metadata?.creationTimestamp) - timestampMs(b.metadata?.creationTimestamp) ||
      podKey(a).localeCompare(podKey(b)),
  );

  const bindings: PodBinding[] = [];
  const unschedulable: UnschedulablePod[] = [];
  for (const pod of pending) {
    const namespace = pod.metadata?.namespace ?? 'default';
    const name = pod.metadata?.name ?? '';
    const rejections = new Map<Rejection, number>();
    let best: { name: string; count: number } | undefined;
    for (const node of nodes) {
      const rejection = rejectionOf(pod, node);
      if (rejection !== undefined) {
        rejections.set(rejection, (rejections.get(rejection) ?? 0) + 1);
        continue;
      }
      const nodeName = node.metadata?.name ?? '';
      const count = podsPerNode.get(nodeName) ?? 0;
      if (best === undefined || count < best.count || (count === best.count && nodeName < best.name)) {
        best = { name: nodeName, count };
      }
    }
    if (best === undefined) {
      const reasons = [...rejections.entries()]
        .map(([rejection, count]) => `${count} ${rejectionText[rejection]}`)
        .sort();
      const detail = reasons.length > 0 ? ` ${reasons.join(', ')}.` : '';
      unschedulable.push({ namespace, name, message: `0/${nodes.length} nodes are available:${detail}` });
      continue;
    }
    podsPerNode.set(best.name, best.count + 1);
    bindings.push({ namespace, name, nodeName: best.name });
  }
  return { bindings, unschedulable };
}

/** Milliseconds of a metadata timestamp, which is a Date from the client or a string from raw JSON. */
export function timestampMs(value: Date | string | undefined): number {
  if (value === undefined) return 0;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? 0 : ms;
}
