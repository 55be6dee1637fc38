/**
 * The time of the change that caused an Endpoints or EndpointSlice write (upstream
 * `TriggerTimeTracker`), written as the last-change-trigger-time annotation so latency from a pod's
 * change to the proxy rules can be measured end to end.
 */
import type { V1Pod, V1Service } from '@kubernetes/client-node';

interface ServiceTriggerState {
  serviceTime: number | undefined;
  podTimes: Map<string, number | undefined>;
}

/** A timestamp as informers deliver it (client-node's `Date`) or as plain JSON (a string). */
function millis(value: Date | string | undefined | null): number | undefined {
  if (value === undefined || value === null) return undefined;
  const time = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(time) ? undefined : time;
}

function podTriggerTime(pod: V1Pod): number | undefined {
  const ready = (pod.status?.conditions ?? []).find((condition) => condition.type === 'Ready');
  return millis(ready?.lastTransitionTime);
}

function movedForward(previous: number | undefined, current: number | undefined): boolean {
  return current !== undefined && (previous === undefined || previous < current);
}

/**
 * Remembers, per Service, the Service's creation time and each pod's Ready-condition transition time
 * from the previous sync. Not safe for two syncs of one Service at once, which the work queue
 * rules out.
 */
export class TriggerTimeTracker {
  readonly #states = new Map<string, ServiceTriggerState>();

  /**
   * The earliest time among the pods whose Ready transition moved forward since the last call for
   * this Service (and the Service itself when first seen), or `undefined` when nothing moved, which
   * means the annotation is removed.
   */
  compute(serviceKey: string, service: V1Service, pods: readonly V1Pod[]): Date | undefined {
    const previous = this.#states.get(serviceKey);
    const current: ServiceTriggerState = {
      serviceTime: millis(service.metadata?.creationTimestamp),
      podTimes: new Map(),
    };
    let earliest: number | undefined;
    const consider = (time: number | undefined) => {
      if (time !== undefined && (earliest === undefined || time < earliest)) earliest = time;
    };
    for (const pod of pods) {
      const name = pod.metadata?.name ?? '';
      const time = podTriggerTime(pod);
      current.podTimes.set(name, time);
      if (movedForward(previous?.podTimes.get(name), time)) consider(time);
    }
    if (movedForward(previous?.serviceTime, current.serviceTime)) consider(current.serviceTime);
    this.#states.set(serviceKey, current);
    return earliest === undefined ? undefined : new Date(earliest);
  }

  /** Forgets a deleted Service. */
  forget(serviceKey: string): void {
    this.#states.delete(serviceKey);
  }
}
