import type { V1ContainerStatus, V1Pod, V1PodCondition, V1PodStatus } from '@kubernetes/client-node';

/**
 * Set to "false" on a pod to make the local kubelet report it unready, as a failing readiness probe
 * would; any other value or its absence leaves readiness to the probes.
 */
export const readinessOverrideAnnotation = 'e2e.portico.io/ready';

/** What the kubelet knows about a running pod when it writes status. */
export interface RunningPodFacts {
  readonly podIp: string;
  readonly hostIp: string;
  /** When the pod's containers started (the pod server answered). */
  readonly startedAt: Date;
  /** The readiness the probes (or their absence) report, before the override annotation. */
  readonly probesReady: boolean;
  readonly now: Date;
}

/** Whether the override annotation forces the pod unready. */
export function isForcedUnready(pod: V1Pod): boolean {
  return pod.metadata?.annotations?.[readinessOverrideAnnotation] === 'false';
}

function condition(
  type: string,
  status: boolean,
  previous: readonly V1PodCondition[] | undefined,
  now: Date,
  reason?: string,
): V1PodCondition {
  const value = status ? 'True' : 'False';
  const before = previous?.find((c) => c.type === type);
  // Kubernetes only moves lastTransitionTime when the status flips; clients rely on it for "ready since".
  const lastTransitionTime =
    before?.status === value && before.lastTransitionTime ? before.lastTransitionTime : now;
  return { type, status: value, lastTransitionTime, ...(reason ? { reason } : {}) };
}

/**
 * The status the local kubelet writes for a running pod: phase Running, the pod and host IPs, the
 * four conditions in upstream's order, and one running containerStatus per container. Conditions
 * keep their lastTransitionTime while their status is unchanged, so writing the same facts twice
 * yields an equal status (and the kubelet can skip the write).
 */
export function buildRunningPodStatus(pod: V1Pod, facts: RunningPodFacts): V1PodStatus {
  const ready = facts.probesReady && !isForcedUnready(pod);
  const previous = pod.status?.conditions;
  const notReadyReason = ready ? undefined : 'ContainersNotReady';
  const containerStatuses: V1ContainerStatus[] = (pod.spec?.containers ?? []).map((container) => ({
    name: container.name,
    image: container.image ?? '',
    imageID: '',
    containerID: `portico://${pod.metadata?.uid ?? pod.metadata?.name ?? ''}/${container.name}`,
    ready,
    started: true,
    restartCount: 0,
    state: { running: { startedAt: facts.startedAt } },
  }));
  return {
    phase: 'Running',
    hostIP: facts.hostIp,
    hostIPs: [{ ip: facts.hostIp }],
    podIP: facts.podIp,
    podIPs: [{ ip: facts.podIp }],
    startTime: pod.status?.startTime ?? facts.startedAt,
    qosClass: pod.status?.qosClass ?? 'BestEffort',
    conditions: [
      condition('PodScheduled', true, previous, facts.now),
      condition('Initialized', true, previous, facts.now),
      condition('ContainersReady', ready, previous, facts.now, notReadyReason),
      condition('Ready', ready, previous, facts.now, notReadyReason),
    ],
    containerStatuses,
  };
}
