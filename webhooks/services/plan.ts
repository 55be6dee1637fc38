/**
 * What the mutating webhook does to a Service, as pure functions: the API server's defaulting and
 * update strategy, upstream's `initIPFamilyFields`, and the list of values to allocate (with the
 * field each one is reported under). The I/O shell in allocate.ts runs the plan against the
 * allocators.
 */
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import type { IPFamily } from '../../allocators/ip.ts';
import { defaultService } from '../validation/service.ts';

/** One value to allocate: a requested one (`value` set) or any free one. */
export interface AllocationSlot<T extends string | number> {
  /** The exact value requested, or undefined for "any free value". */
  readonly value: T | undefined;
  /** The field a failure is reported at, e.g. `spec.ports[1].nodePort`. */
  readonly field: string;
  /**
   * Upstream reports a failed requested healthCheckNodePort as an internal error, not as an
   * invalid field; true for that slot.
   */
  readonly internal: boolean;
  /** Writes the allocated value into the Service being built. */
  readonly assign: (value: T) => void;
}

/** Everything one admission request has to allocate, per allocator. */
export interface AllocationPlan {
  /** The Service as it will be admitted; slots write their values into it. */
  readonly service: V1Service;
  /** ClusterIP slots by family. */
  readonly clusterIPs: ReadonlyMap<IPFamily, readonly AllocationSlot<string>[]>;
  /** NodePort and healthCheckNodePort slots. */
  readonly nodePorts: readonly AllocationSlot<number>[];
}

function isHeadless(service: V1Service): boolean {
  return service.spec?.clusterIPs?.[0] === 'None' || service.spec?.clusterIP === 'None';
}

/** Type NodePort or LoadBalancer: the Service holds node ports. */
function hasNodePorts(service: V1Service | undefined): boolean {
  const type = service?.spec?.type;
  return type === 'NodePort' || type === 'LoadBalancer';
}

/** LoadBalancer with externalTrafficPolicy Local (upstream `NeedsHealthCheck`). */
export function needsHealthCheck(service: V1Service | undefined): boolean {
  return service?.spec?.type === 'LoadBalancer' && service.spec.externalTrafficPolicy === 'Local';
}

/** Whether the Service holds ClusterIPs at all: not ExternalName, not headless. */
function holdsClusterIPs(service: V1Service | undefined): boolean {
  return service !== undefined && service.spec?.type !== 'ExternalName' && !isHeadless(service);
}

function familyOf(ip: string): IPFamily {
  return ip.includes(':') ? 'IPv6' : 'IPv4';
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/**
 * The update strategy's `dropTypeDependentFields`: when the type changes, values that belonged
 * to the old type and that the client left as they were are cleared for it, so that
 * `kubectl edit` of the type alone gives a valid Service. Values the client changed are kept
 * and left to validation.
 */
function dropTypeDependentFields(service: V1Service, old: V1Service): void {
  const spec = service.spec!;
  const oldSpec = old.spec ?? {};
  if (spec.type === 'ExternalName' && oldSpec.type !== 'ExternalName') {
    if (sameJson(spec.clusterIPs, oldSpec.clusterIPs)) {
      delete spec.clusterIP;
      delete spec.clusterIPs;
    }
    if (sameJson(spec.ipFamilies, oldSpec.ipFamilies)) delete spec.ipFamilies;
    if (spec.ipFamilyPolicy === oldSpec.ipFamilyPolicy) delete spec.ipFamilyPolicy;
  }
  if (hasNodePorts(old) && !hasNodePorts(service)) {
    const oldNodePorts = (oldSpec.ports ?? []).map((port) => port.nodePort ?? 0);
    const nodePorts = (spec.ports ?? []).map((port) => port.nodePort ?? 0);
    if (sameJson(nodePorts, oldNodePorts)) {
      for (const port of spec.ports ?? []) delete port.nodePort;
    }
  }
  if (needsHealthCheck(old) && !needsHealthCheck(service)) {
    if (spec.healthCheckNodePort === oldSpec.healthCheckNodePort) delete spec.healthCheckNodePort;
  }
  if (oldSpec.type === 'LoadBalancer' && spec.type !== 'LoadBalancer') {
    if (spec.allocateLoadBalancerNodePorts === oldSpec.allocateLoadBalancerNodePorts)
      delete spec.allocateLoadBalancerNodePorts;
    if (spec.loadBalancerClass === oldSpec.loadBalancerClass) delete spec.loadBalancerClass;
  }
}

/**
 * Applies what kube-apiserver applies before validation and allocation: defaults, and on update
 * the type-dependent clean-up. Returns a new object; `service` is not changed.
 */
export function prepareService(service: V1Service, old: V1Service | undefined): V1Service {
  const prepared = defaultService(service);
  if (old !== undefined) dropTypeDependentFields(prepared, old);
  return prepared;
}

/**
 * Upstream's `initIPFamilyFields`: fills ipFamilyPolicy and ipFamilies from what the client gave,
 * the clusterIPs and the cluster's families. Assumes the fields already passed validation (the
 * combination is allowed on this cluster). Changes `service` in place.
 *
 * @param families the cluster's IP families, default family first
 */
export function initIPFamilyFields(
  service: V1Service,
  old: V1Service | undefined,
  families: readonly IPFamily[],
): void {
  const spec = service.spec!;
  if (spec.type === 'ExternalName') return;
  const oldHeld = old !== undefined && old.spec?.type !== 'ExternalName';
  if (spec.ipFamilyPolicy === undefined && oldHeld && old.spec?.ipFamilyPolicy !== undefined) {
    spec.ipFamilyPolicy = old.spec.ipFamilyPolicy;
  }
  const headless = isHeadless(service);
  const selectorless = Object.keys(spec.selector ?? {}).length === 0;
  spec.ipFamilyPolicy ??= headless && selectorless ? 'RequireDualStack' : 'SingleStack';
  if (oldHeld && spec.ipFamilyPolicy === 'SingleStack') {
    // A downgrade with otherwise unchanged lists: the server trims them itself.
    if ((spec.clusterIPs ?? []).length > 1 && sameJson(spec.clusterIPs, old.spec?.clusterIPs)) {
      spec.clusterIPs = spec.clusterIPs!.slice(0, 1);
    }
    if ((spec.ipFamilies ?? []).length > 1 && sameJson(spec.ipFamilies, old.spec?.ipFamilies)) {
      spec.ipFamilies = spec.ipFamilies!.slice(0, 1);
    }
  }
  const result = [...(spec.ipFamilies ?? [])] as IPFamily[];
  if (!headless) {
    for (const ip of (spec.clusterIPs ?? []).slice(result.length)) result.push(familyOf(ip));
  }
  if (result.length === 0 && families[0] !== undefined) result.push(families[0]);
  if (spec.ipFamilyPolicy !== 'SingleStack' && result.length === 1 && families.length === 2) {
    result.push(result[0] === 'IPv4' ? 'IPv6' : 'IPv4');
  }
  spec.ipFamilies = result;
}

/**
 * The values a prepared Service needs allocated: ClusterIPs for each family it lacks (or asked
 * for and did not hold before), and node ports for NodePort and LoadBalancer Services.
 *
 * Node ports follow upstream's `initNodePorts`: entries with the same port number (53/TCP and
 * 53/UDP) share one node port, a requested one if any entry names it; a LoadBalancer with
 * `allocateLoadBalancerNodePorts: false` gets only the node ports it asks for. Values the old
 * object already held are not allocated again.
 */
export function planAllocations(service: V1Service, old: V1Service | undefined): AllocationPlan {
  const spec = service.spec!;
  const clusterIPs = new Map<IPFamily, AllocationSlot<string>[]>();
  if (holdsClusterIPs(service)) {
    const held = new Set(holdsClusterIPs(old) ? (old?.spec?.clusterIPs ?? []) : []);
    const ips = [...(spec.clusterIPs ?? [])];
    const families = (spec.ipFamilies ?? []) as IPFamily[];
    for (const [i, family] of families.entries()) {
      const requested = ips[i];
      if (requested !== undefined && requested !== '' && held.has(requested)) continue;
      const slot: AllocationSlot<string> = {
        value: requested === '' ? undefined : requested,
        field: `spec.clusterIPs[${i}]`,
        internal: false,
        assign: (ip) => {
          ips[i] = ip;
          spec.clusterIPs = ips.slice(0, families.length);
          spec.clusterIP = spec.clusterIPs[0]!;
        },
      };
      const list = clusterIPs.get(family);
      if (list === undefined) clusterIPs.set(family, [slot]);
      else list.push(slot);
    }
  }
  return { service, clusterIPs, nodePorts: planNodePorts(service, old) };
}

function planNodePorts(service: V1Service, old: V1Service | undefined): AllocationSlot<number>[] {
  const spec = service.spec!;
  const slots: AllocationSlot<number>[] = [];
  if (hasNodePorts(service)) {
    const autoAllocate = spec.type === 'NodePort' || spec.allocateLoadBalancerNodePorts !== false;
    const held = new Set(hasNodePorts(old) ? (old?.spec?.ports ?? []).map((port) => port.nodePort ?? 0) : []);
    const ports = spec.ports ?? [];
    // Port number → the node port its entries share, or the slot that will produce it.
    const shared = new Map<number, { nodePort: number } | { targets: V1ServicePort[] }>();
    const requested = new Set<number>();
    const requestExact = (nodePort: number, index: number) => {
      if (held.has(nodePort) || requested.has(nodePort)) return;
      requested.add(nodePort);
      slots.push({
        value: nodePort,
        field: `spec.ports[${index}].nodePort`,
        internal: false,
        // The requested value is already in the spec; nothing to write back.
        assign: () => {},
      });
    };
    for (const [i, port] of ports.entries()) {
      const nodePort = port.nodePort ?? 0;
      if (nodePort === 0 && !autoAllocate) continue;
      const known = shared.get(port.port);
      if (known === undefined) {
        const asked =
          nodePort !== 0 ? nodePort : (ports.find((p) => p.port === port.port && p.nodePort)?.nodePort ?? 0);
        if (asked !== 0) {
          port.nodePort = asked;
          shared.set(port.port, { nodePort: asked });
          requestExact(asked, i);
        } else {
          const targets = [port];
          shared.set(port.port, { targets });
          slots.push({
            value: undefined,
            field: `spec.ports[${i}].nodePort`,
            internal: false,
            assign: (value) => {
              for (const target of targets) target.nodePort = value;
            },
          });
        }
      } else if (nodePort === 0) {
        if ('nodePort' in known) port.nodePort = known.nodePort;
        else known.targets.push(port);
      } else {
        requestExact(nodePort, i);
      }
    }
  }
  if (needsHealthCheck(service)) {
    const requested = spec.healthCheckNodePort ?? 0;
    const heldBefore = needsHealthCheck(old) && old?.spec?.healthCheckNodePort === requested;
    if (requested === 0 || !heldBefore) {
      slots.push({
        value: requested === 0 ? undefined : requested,
        field: 'spec.healthCheckNodePort',
        internal: requested !== 0,
        assign: (value) => {
          spec.healthCheckNodePort = value;
        },
      });
    }
  }
  return slots;
}
