/**
 * Change tracking for the agent: the latest Service and EndpointSlice of every key, the set of
 * Services that changed since the last sync, and the desired state built from them.
 *
 * Each Service's ports are recomputed only when the Service or one of its slices changed, so a
 * sync after one endpoint change costs O(changed) here plus an O(Services) walk to assemble the
 * sorted list; that is what makes partial syncs cheap at 30,000 Services.
 */
import { isDeepStrictEqual } from 'node:util';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { LABEL_HEADLESS_SERVICE, LABEL_SERVICE_NAME, LABEL_SERVICE_PROXY_NAME } from '../../api/labels.ts';
import { categorizeEndpoints, endpointsForPort } from './endpoints.ts';
import { ANNOTATION_IPVS_SCHEDULER, servicePortSpecs } from './service.ts';
import type { DesiredState, IPFamily, NodeInfo, ServicePortState } from './types.ts';
import { IP_FAMILIES } from './types.ts';

/** Options of a {@link ChangeTracker}. */
export interface ChangeTrackerOptions {
  /** The node the agent programs; decides which endpoints are local and which hints apply. */
  readonly node: NodeInfo;
  /** The agent's `--service-proxy-name`; '' for the default proxy. */
  readonly proxyName?: string;
}

/** What {@link ChangeTracker.snapshot} hands to a sync. */
export interface TrackerSnapshot {
  readonly desired: Readonly<Record<IPFamily, DesiredState>>;
  /** `namespace/name` of every Service whose rules may differ from the previous snapshot's. */
  readonly changedServices: ReadonlySet<string>;
}

/**
 * The parts of a Service that influence rules; resourceVersion, status conditions and the other
 * annotations do not.
 */
function serviceFingerprint(service: V1Service): unknown {
  return {
    labels: service.metadata?.labels,
    ipvsScheduler: service.metadata?.annotations?.[ANNOTATION_IPVS_SCHEDULER],
    spec: service.spec,
    ingress: service.status?.loadBalancer?.ingress,
  };
}

function sliceFingerprint(slice: V1EndpointSlice): unknown {
  return {
    labels: slice.metadata?.labels,
    addressType: slice.addressType,
    ports: slice.ports,
    endpoints: slice.endpoints,
  };
}

/** Where one Service's ports sit in a snapshot's port list of one family. */
interface PortRange {
  readonly start: number;
  readonly count: number;
}

function compareServicePorts(a: ServicePortState, b: ServicePortState): number {
  const left = `${a.name}/${a.protocol}`;
  const right = `${b.name}/${b.protocol}`;
  return left < right ? -1 : left > right ? 1 : 0;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Records Services and EndpointSlices as informers deliver them and builds the desired state.
 * Not thread-bound: informer callbacks call the update methods, the sync runner calls
 * {@link ChangeTracker.snapshot}.
 */
export class ChangeTracker {
  readonly #proxyName: string;
  #node: NodeInfo;
  readonly #services = new Map<string, V1Service>();
  /** Slices by Service key, then by slice name. */
  readonly #slices = new Map<string, Map<string, V1EndpointSlice>>();
  /** Ports of each proxied Service per family, computed lazily after a change. */
  readonly #ports = new Map<string, Record<IPFamily, ServicePortState[]>>();
  readonly #changed = new Set<string>();
  #sortedKeys: string[] | null = null;
  /** The last snapshot's port lists and where each Service's ports are in them, for reuse. */
  #assembled: {
    readonly ports: Readonly<Record<IPFamily, readonly ServicePortState[]>>;
    readonly places: ReadonlyMap<string, Readonly<Record<IPFamily, PortRange>>>;
  } | null = null;

  constructor(options: ChangeTrackerOptions) {
    this.#node = options.node;
    this.#proxyName = options.proxyName ?? '';
  }

  /** The node as last set; its name, zone and addresses feed every desired state. */
  get node(): NodeInfo {
    return this.#node;
  }

  /** Adds or replaces a Service. */
  updateService(service: V1Service): void {
    const key = `${service.metadata?.namespace ?? 'default'}/${service.metadata?.name ?? ''}`;
    const previous = this.#services.get(key);
    if (
      previous !== undefined &&
      isDeepStrictEqual(serviceFingerprint(previous), serviceFingerprint(service))
    )
      return;
    if (previous === undefined) this.#sortedKeys = null;
    this.#services.set(key, service);
    this.#markChanged(key);
  }

  /** Forgets a Service; its rules disappear at the next sync. */
  deleteService(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    if (!this.#services.delete(key)) return;
    this.#sortedKeys = null;
    this.#markChanged(key);
  }

  /**
   * Adds or replaces an EndpointSlice. A slice whose labels put it out of scope (headless, or
   * claimed by another proxy: the slice controller copies the Service's labels) is treated as
   * deleted, as kube-proxy's label-selected informer would see it.
   */
  updateEndpointSlice(slice: V1EndpointSlice): void {
    const labels = slice.metadata?.labels ?? {};
    const claimedBy = labels[LABEL_SERVICE_PROXY_NAME];
    if (LABEL_HEADLESS_SERVICE in labels || (claimedBy !== undefined && claimedBy !== this.#proxyName)) {
      this.deleteEndpointSlice(slice);
      return;
    }
    const key = this.#sliceServiceKey(slice);
    if (key === null) return;
    const name = slice.metadata?.name ?? '';
    let byName = this.#slices.get(key);
    if (byName === undefined) {
      byName = new Map();
      this.#slices.set(key, byName);
    }
    const previous = byName.get(name);
    if (previous !== undefined && isDeepStrictEqual(sliceFingerprint(previous), sliceFingerprint(slice)))
      return;
    byName.set(name, slice);
    this.#markChanged(key);
  }

  /** Forgets an EndpointSlice. */
  deleteEndpointSlice(slice: V1EndpointSlice): void {
    const key = this.#sliceServiceKey(slice);
    if (key === null) return;
    const byName = this.#slices.get(key);
    if (byName?.delete(slice.metadata?.name ?? '') !== true) return;
    if (byName.size === 0) this.#slices.delete(key);
    this.#markChanged(key);
  }

  /**
   * Replaces the node facts. A new name or zone changes which endpoints are local or hinted for
   * every Service, so everything is recomputed and reported changed.
   */
  setNode(node: NodeInfo): void {
    if (isDeepStrictEqual(node, this.#node)) return;
    this.#node = node;
    this.#ports.clear();
    for (const key of this.#services.keys()) this.#changed.add(key);
  }

  /** Services changed since the last {@link ChangeTracker.snapshot}. */
  get pendingChanges(): ReadonlySet<string> {
    return this.#changed;
  }

  /**
   * The desired state of both families and the Services changed since the previous snapshot,
   * which this call forgets. A sync that fails must therefore run as a full sync next time.
   */
  snapshot(): TrackerSnapshot {
    const changedServices = new Set(this.#changed);
    this.#changed.clear();
    const byFamily = this.#reassembled(changedServices) ?? this.#assemble();
    return {
      desired: {
        IPv4: Object.freeze({ family: 'IPv4', servicePorts: Object.freeze(byFamily.IPv4) }),
        IPv6: Object.freeze({ family: 'IPv6', servicePorts: Object.freeze(byFamily.IPv6) }),
      },
      changedServices,
    };
  }

  /**
   * The previous port lists with the changed Services' ports replaced in place, or null when a
   * Service came, went or changed its number of ports (then the lists are rebuilt). Copying the
   * lists instead of walking every Service keeps a one-endpoint sync cheap at 30,000 Services.
   */
  #reassembled(changed: ReadonlySet<string>): Record<IPFamily, ServicePortState[]> | null {
    if (this.#sortedKeys === null || this.#assembled === null) return null;
    const { ports, places } = this.#assembled;
    const byFamily: Record<IPFamily, ServicePortState[]> = { IPv4: [...ports.IPv4], IPv6: [...ports.IPv6] };
    for (const key of changed) {
      const place = places.get(key);
      if (place === undefined || !this.#services.has(key)) return null;
      const now = this.#portsOf(key);
      for (const family of IP_FAMILIES) {
        const { start, count } = place[family];
        if (now[family].length !== count) return null;
        now[family].forEach((port, index) => {
          byFamily[family][start + index] = port;
        });
      }
    }
    this.#assembled = { ports: byFamily, places };
    return byFamily;
  }

  #assemble(): Record<IPFamily, ServicePortState[]> {
    if (this.#sortedKeys === null) this.#sortedKeys = [...this.#services.keys()].sort();
    const byFamily: Record<IPFamily, ServicePortState[]> = { IPv4: [], IPv6: [] };
    const places = new Map<string, Record<IPFamily, PortRange>>();
    for (const key of this.#sortedKeys) {
      const ports = this.#portsOf(key);
      places.set(key, {
        IPv4: { start: byFamily.IPv4.length, count: ports.IPv4.length },
        IPv6: { start: byFamily.IPv6.length, count: ports.IPv6.length },
      });
      for (const family of IP_FAMILIES) for (const port of ports[family]) byFamily[family].push(port);
    }
    this.#assembled = { ports: byFamily, places };
    return byFamily;
  }

  #markChanged(key: string): void {
    this.#ports.delete(key);
    this.#changed.add(key);
  }

  #sliceServiceKey(slice: V1EndpointSlice): string | null {
    const serviceName = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
    if (serviceName === undefined || serviceName === '') return null;
    return `${slice.metadata?.namespace ?? 'default'}/${serviceName}`;
  }

  #portsOf(key: string): Record<IPFamily, ServicePortState[]> {
    const cached = this.#ports.get(key);
    if (cached !== undefined) return cached;
    const service = this.#services.get(key)!;
    const slices = [...(this.#slices.get(key)?.values() ?? [])];
    const result: Record<IPFamily, ServicePortState[]> = { IPv4: [], IPv6: [] };
    for (const family of IP_FAMILIES) {
      for (const spec of servicePortSpecs(service, family, this.#proxyName)) {
        const portName = spec.name.includes(':') ? spec.name.slice(spec.name.indexOf(':') + 1) : '';
        const endpoints = endpointsForPort(slices, family, portName, spec.protocol, this.#node.name);
        const categorized = categorizeEndpoints(spec, endpoints, this.#node);
        result[family].push(deepFreeze({ ...spec, endpoints, ...categorized }));
      }
      result[family].sort(compareServicePorts);
    }
    this.#ports.set(key, result);
    return result;
  }
}
