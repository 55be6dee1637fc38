/**
 * The ConfigMaps that hold Portico's allocation bitmaps: one per allocator (each ClusterIP
 * family, NodePorts) in Portico's namespace. Every replica reads and writes them with
 * compare-and-swap on resourceVersion, so their layout is a contract between versions.
 */

/** Layout version in `data.formatVersion`; a replica refuses ConfigMaps with another version. */
export const ALLOCATION_FORMAT_VERSION = '1';

/** `data` key: the range the bitmap covers (`10.96.0.0/12`, `fd00::/108`, `30000-32767`). */
export const ALLOCATION_RANGE_KEY = 'range';

/** `data` key: what is allocated (`IPv4`, `IPv6` or `NodePort`). */
export const ALLOCATION_KIND_KEY = 'kind';

/** `data` key: {@link ALLOCATION_FORMAT_VERSION}. */
export const ALLOCATION_FORMAT_VERSION_KEY = 'formatVersion';

/** `binaryData` key: the bitmap, base64 as binaryData always is (see allocators/bitmap.ts for the bytes). */
export const ALLOCATION_BITMAP_KEY = 'bitmap';

/** Label on every allocation ConfigMap, so `kubectl get cm -l` finds them. */
export const ALLOCATION_COMPONENT_LABEL = 'app.kubernetes.io/component';

/** Value of {@link ALLOCATION_COMPONENT_LABEL}. */
export const ALLOCATION_COMPONENT = 'portico-allocator';

/** What an allocation ConfigMap holds. */
export type AllocationKind = 'IPv4' | 'IPv6' | 'NodePort';

/** Name of the ConfigMap for an allocator kind: `portico-clusterip-ipv4`, `portico-clusterip-ipv6`, `portico-nodeport`. */
export function allocationConfigMapName(kind: AllocationKind): string {
  return kind === 'NodePort' ? 'portico-nodeport' : `portico-clusterip-${kind.toLowerCase()}`;
}
