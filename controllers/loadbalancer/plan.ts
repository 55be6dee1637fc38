/**
 * The pure half of the LoadBalancer controller: which Services it owns, what a Service asks of
 * the allocator, the `status.loadBalancer` it should have, and the status of each pool. No I/O,
 * so the decisions are unit-tested without a server.
 */
import type { V1LoadBalancerIngress, V1Service } from '@kubernetes/client-node';
import type { IPFamily } from '../../allocators/ip.ts';
import type { LoadBalancerRequest, PoolUsage } from '../../allocators/lb-pool/allocator.ts';
import { type PoolProblem, saturatingNumber } from '../../allocators/lb-pool/pool.ts';
import {
  ANNOTATION_ALLOW_SHARED_IP,
  ANNOTATION_IP_POOL,
  ANNOTATION_LOAD_BALANCER_IPS,
  FINALIZER_LOAD_BALANCER_CLEANUP,
} from '../../api/labels.ts';
import { POOL_CONDITION_EXHAUSTED, POOL_CONDITION_READY } from '../../api/loadbalancerippool.ts';

/** Condition type on a pool: its addresses overlap an older pool's, so it hands out none. */
export const POOL_CONDITION_OVERLAPPING = 'Overlapping';

/**
 * Whether the controller owns the Service's load balancer: type LoadBalancer with
 * `spec.loadBalancerClass` unset or equal to Portico's class. Any other class belongs to another
 * controller and is never touched, as upstream's service controller does.
 */
export function handlesService(service: V1Service, loadBalancerClass: string): boolean {
  if (service.spec?.type !== 'LoadBalancer') return false;
  const serviceClass = service.spec.loadBalancerClass;
  return serviceClass === undefined || serviceClass === null || serviceClass === loadBalancerClass;
}

/** Whether the Service carries the load-balancer-cleanup finalizer, i.e. Portico has managed it. */
export function hasCleanupFinalizer(service: V1Service): boolean {
  return service.metadata?.finalizers?.includes(FINALIZER_LOAD_BALANCER_CLEANUP) ?? false;
}

/** The Service's finalizers with the cleanup finalizer added or removed. */
export function finalizersWith(service: V1Service, present: boolean): string[] {
  const others = (service.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER_LOAD_BALANCER_CLEANUP);
  return present ? [...others, FINALIZER_LOAD_BALANCER_CLEANUP] : others;
}

function familiesOf(service: V1Service): IPFamily[] {
  const declared = (service.spec?.ipFamilies ?? []).filter(
    (family): family is IPFamily => family === 'IPv4' || family === 'IPv6',
  );
  if (declared.length > 0) return declared;
  // Without the allocation webhook a Service may reach us before its families are filled in.
  return service.spec?.clusterIP?.includes(':') ? ['IPv6'] : ['IPv4'];
}

/**
 * The backend key of MetalLB's sharing rule: Services with externalTrafficPolicy Local may
 * share an address only with the same selector, because the address is announced from the
 * nodes that have local endpoints and those must be the same for every sharer.
 */
function backendKeyOf(service: V1Service): string {
  if (service.spec?.externalTrafficPolicy !== 'Local') return '';
  const selector = service.spec.selector ?? {};
  return Object.keys(selector)
    .sort()
    .map((key) => `${key}=${selector[key]}`)
    .join(',');
}

/** What the Service asks of the allocator, read from its spec and annotations. */
export function loadBalancerRequestOf(
  service: V1Service,
  namespaceLabels: Readonly<Record<string, string>>,
): LoadBalancerRequest {
  const annotations = service.metadata?.annotations ?? {};
  const annotated = annotations[ANNOTATION_LOAD_BALANCER_IPS]?.trim() ?? '';
  const legacy = service.spec?.loadBalancerIP?.trim() ?? '';
  const requestedIPs =
    annotated !== ''
      ? annotated
          .split(',')
          .map((ip) => ip.trim())
          .filter((ip) => ip !== '')
      : legacy !== ''
        ? [legacy]
        : [];
  return {
    key: `${service.metadata?.namespace ?? ''}/${service.metadata?.name ?? ''}`,
    families: familiesOf(service),
    requestedIPs,
    requestedIPsField:
      annotated !== '' ? `metadata.annotations[${ANNOTATION_LOAD_BALANCER_IPS}]` : 'spec.loadBalancerIP',
    poolName: annotations[ANNOTATION_IP_POOL]?.trim() || undefined,
    sharingKey: annotations[ANNOTATION_ALLOW_SHARED_IP]?.trim() || undefined,
    backendKey: backendKeyOf(service),
    ports: (service.spec?.ports ?? []).map((port) => ({ protocol: port.protocol ?? 'TCP', port: port.port })),
    serviceLabels: service.metadata?.labels ?? {},
    namespaceLabels,
  };
}

/** The IPs currently published in `status.loadBalancer.ingress`. */
export function ingressIPsOf(service: V1Service): string[] {
  return (service.status?.loadBalancer?.ingress ?? []).flatMap((ingress) => (ingress.ip ? [ingress.ip] : []));
}

/**
 * The ingress list for the assigned addresses. ipMode VIP: traffic arrives with the LB IP as its
 * destination, so the agent programs the address on every node.
 */
export function desiredIngress(ips: readonly string[]): V1LoadBalancerIngress[] {
  return ips.map((ip) => ({ ip, ipMode: 'VIP' }));
}

/** Whether the Service's status already says exactly `desired` (same IPs, modes, no hostnames). */
export function ingressMatches(service: V1Service, desired: readonly V1LoadBalancerIngress[]): boolean {
  const current = service.status?.loadBalancer?.ingress ?? [];
  if (current.length !== desired.length) return false;
  return current.every((ingress, index) => {
    const want = desired[index];
    return (
      want !== undefined &&
      ingress.ip === want.ip &&
      (ingress.ipMode ?? 'VIP') === want.ipMode &&
      !ingress.hostname &&
      (ingress.ports ?? []).length === 0
    );
  });
}

/** A metav1.Condition as JSON on the wire (timestamps as RFC 3339 strings, second precision). */
export interface PoolCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** A pool's status as JSON on the wire. */
export interface PoolStatusBody {
  capacity: number;
  allocated: number;
  conditions: PoolCondition[];
}

/** Input of {@link poolStatusOf}. */
export interface PoolStatusInput {
  /** Capacity and use, from the allocator. */
  readonly usage: PoolUsage | undefined;
  /** Why the pool is unusable, if it is. */
  readonly problem: PoolProblem | undefined;
  /** The conditions currently stored, whose transition times are kept when the status holds. */
  readonly previous: readonly PoolCondition[];
  /** `metadata.generation` of the pool. */
  readonly generation: number | undefined;
  /** The time a changed condition is stamped with. */
  readonly now: Date;
}

function timestamp(now: Date): string {
  return `${now.toISOString().slice(0, 19)}Z`;
}

/**
 * The status a pool should have: capacity and allocated counts, and the Ready, Overlapping and
 * Exhausted conditions. A condition keeps its lastTransitionTime while its status is unchanged.
 */
export function poolStatusOf(input: PoolStatusInput): PoolStatusBody {
  const { usage, problem, previous, generation, now } = input;
  const capacity = usage?.capacity ?? 0n;
  const allocated = usage?.allocated ?? 0;
  const free = capacity - BigInt(allocated);
  const condition = (
    type: string,
    status: 'True' | 'False',
    reason: string,
    message: string,
  ): PoolCondition => {
    const before = previous.find((c) => c.type === type);
    return {
      type,
      status,
      reason,
      message,
      lastTransitionTime:
        before !== undefined && before.status === status ? before.lastTransitionTime : timestamp(now),
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    };
  };
  const exhausted = problem === undefined && free <= 0n;
  return {
    capacity: saturatingNumber(capacity),
    allocated,
    conditions: [
      problem === undefined
        ? condition(POOL_CONDITION_READY, 'True', 'AddressesValid', 'the pool hands out its addresses')
        : condition(POOL_CONDITION_READY, 'False', problem.reason, problem.message),
      problem?.reason === 'Overlapping'
        ? condition(POOL_CONDITION_OVERLAPPING, 'True', 'Overlapping', problem.message)
        : condition(POOL_CONDITION_OVERLAPPING, 'False', 'NoOverlap', 'no address is in another pool'),
      exhausted
        ? condition(
            POOL_CONDITION_EXHAUSTED,
            'True',
            'NoFreeAddresses',
            'every address of the pool is allocated',
          )
        : condition(POOL_CONDITION_EXHAUSTED, 'False', 'FreeAddresses', 'the pool has free addresses'),
    ],
  };
}

/** Whether the stored status already equals `desired` (so no write is needed). */
export function poolStatusMatches(stored: unknown, desired: PoolStatusBody): boolean {
  return JSON.stringify(normalisePoolStatus(stored)) === JSON.stringify(desired);
}

function normalisePoolStatus(stored: unknown): unknown {
  if (typeof stored !== 'object' || stored === null) return stored;
  const status = stored as Record<string, unknown>;
  const conditions = Array.isArray(status['conditions']) ? status['conditions'] : [];
  return {
    capacity: status['capacity'],
    allocated: status['allocated'],
    conditions: conditions.map((raw: unknown) => {
      const c = (raw ?? {}) as Record<string, unknown>;
      const time = c['lastTransitionTime'];
      return {
        type: c['type'],
        status: c['status'],
        reason: c['reason'],
        message: c['message'],
        lastTransitionTime: time instanceof Date ? timestamp(time) : time,
        ...(c['observedGeneration'] !== undefined ? { observedGeneration: c['observedGeneration'] } : {}),
      };
    }),
  };
}

/** Stored conditions in wire form, for {@link PoolStatusInput.previous}. */
export function storedConditions(stored: unknown): PoolCondition[] {
  const normalised = normalisePoolStatus(stored);
  if (typeof normalised !== 'object' || normalised === null) return [];
  const conditions = (normalised as { conditions?: unknown }).conditions;
  return Array.isArray(conditions) ? (conditions as PoolCondition[]) : [];
}

/**
 * Service condition type, present (status False) while the Service keeps an address that no
 * usable pool holds any more; removed once the address is back in a pool or the Service moves.
 */
export const SERVICE_CONDITION_IP_IN_POOL = 'portico.dev/LoadBalancerIPInPool';

/**
 * The Service's `status.conditions` with Portico's pool condition set for `orphaned` addresses
 * (or removed when there are none), other writers' conditions untouched; undefined when the
 * stored list already says that, so nothing needs writing.
 */
export function serviceConditionsFor(
  service: V1Service,
  orphaned: readonly string[],
  now: Date,
): PoolCondition[] | undefined {
  const stored = storedConditions(service.status);
  const others = stored.filter((condition) => condition.type !== SERVICE_CONDITION_IP_IN_POOL);
  const current = stored.find((condition) => condition.type === SERVICE_CONDITION_IP_IN_POOL);
  if (orphaned.length === 0) return current === undefined ? undefined : others;
  const message = `keeps ${orphaned.join(', ')} although no LoadBalancerIPPool holds ${orphaned.length > 1 ? 'them' : 'it'} any more; traffic is unaffected`;
  if (current?.status === 'False' && current.reason === 'IPNotInPool' && current.message === message) {
    return undefined;
  }
  const generation = service.metadata?.generation;
  return [
    ...others,
    {
      type: SERVICE_CONDITION_IP_IN_POOL,
      status: 'False',
      reason: 'IPNotInPool',
      message,
      lastTransitionTime: current?.status === 'False' ? current.lastTransitionTime : timestamp(now),
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    },
  ];
}
