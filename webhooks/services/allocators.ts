import { ClusterIPAllocator, NodePortAllocator, type RangeAllocator } from '../../allocators/allocator.ts';
import type { ClusterIPRange } from '../../allocators/cluster-ip-range.ts';
import { ConfigMapAllocationStore, type ConfigMapClient } from '../../allocators/configmap-store.ts';
import type { IPFamily } from '../../allocators/ip.ts';
import type { NodePortRange } from '../../allocators/node-port-range.ts';
import { allocationConfigMapName } from '../../api/allocation.ts';

/** The configured ranges: `--service-cluster-ip-range` (primary family first) and `--service-node-port-range`. */
export interface ServiceRanges {
  /** One CIDR, or one per family for dual-stack; the first is the cluster's default family. */
  readonly serviceCIDRs: readonly ClusterIPRange[];
  /** The node-port range. */
  readonly nodePortRange: NodePortRange;
}

/** One persisted allocator: its ConfigMap store and a factory for scratch copies (dry run, planning). */
export interface AllocatorHandle<T extends string | number> {
  /** The compare-and-swap store every durable change goes through. */
  readonly store: ConfigMapAllocationStore<T>;
  /** An empty allocator over the same range. */
  readonly newAllocator: () => RangeAllocator<T>;
}

/** Options of {@link ServiceAllocators}. */
export interface ServiceAllocatorsOptions {
  /** Reads and writes the allocation ConfigMaps. */
  readonly client: ConfigMapClient;
  /** Portico's namespace, where the ConfigMaps live. */
  readonly namespace: string;
  /** The configured ranges. */
  readonly ranges: ServiceRanges;
  /** Passed to each store; tests shorten the conflict backoff with it. */
  readonly storeTuning?: { readonly initialBackoffMs?: number; readonly maxBackoffMs?: number };
}

/**
 * The allocators a Service draws from: one ClusterIP allocator per configured family and the
 * NodePort allocator (which also serves healthCheckNodePorts), each persisted in its own
 * ConfigMap. One instance per process: its stores batch that process's concurrent requests
 * into shared compare-and-swap writes.
 */
export class ServiceAllocators {
  /** The configured ranges. */
  readonly ranges: ServiceRanges;
  /** IP families in configuration order; the first is the default family. */
  readonly families: readonly IPFamily[];
  /** The NodePort allocator. */
  readonly nodePorts: AllocatorHandle<number>;
  readonly #clusterIPs = new Map<IPFamily, AllocatorHandle<string>>();

  /** @param options client, namespace and ranges */
  constructor(options: ServiceAllocatorsOptions) {
    this.ranges = options.ranges;
    const tuning = options.storeTuning ?? {};
    const families: IPFamily[] = [];
    for (const range of options.ranges.serviceCIDRs) {
      const newAllocator = () => new ClusterIPAllocator(range);
      const store = new ConfigMapAllocationStore<string>({
        client: options.client,
        namespace: options.namespace,
        name: allocationConfigMapName(range.kind),
        newAllocator,
        ...tuning,
      });
      this.#clusterIPs.set(range.kind, { store, newAllocator });
      families.push(range.kind);
    }
    this.families = families;
    const nodePortAllocator = () => new NodePortAllocator(options.ranges.nodePortRange);
    this.nodePorts = {
      store: new ConfigMapAllocationStore<number>({
        client: options.client,
        namespace: options.namespace,
        name: allocationConfigMapName('NodePort'),
        newAllocator: nodePortAllocator,
        ...tuning,
      }),
      newAllocator: nodePortAllocator,
    };
  }

  /** The ClusterIP allocator of `family`, or undefined when the cluster is not configured for it. */
  clusterIP(family: IPFamily): AllocatorHandle<string> | undefined {
    return this.#clusterIPs.get(family);
  }

  /** Every allocator, ClusterIP families first, with a label for logs and metrics. */
  all(): Array<{ label: string; handle: AllocatorHandle<string> | AllocatorHandle<number> }> {
    const handles: Array<{ label: string; handle: AllocatorHandle<string> | AllocatorHandle<number> }> = [];
    for (const [family, handle] of this.#clusterIPs) handles.push({ label: family, handle });
    handles.push({ label: 'NodePort', handle: this.nodePorts });
    return handles;
  }

  /**
   * Reads every ConfigMap once. Rejects with RangeMismatchError when one was written for another
   * range, or AllocationStateError when one is unreadable, so a replica configured differently
   * from the stored state refuses to start instead of handing out values from the wrong range.
   */
  async verifyStoredState(): Promise<void> {
    for (const { handle } of this.all()) {
      await (handle.store as ConfigMapAllocationStore<string | number>).read();
    }
  }
}
