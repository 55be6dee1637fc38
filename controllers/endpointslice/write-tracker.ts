/**
 * Memory of the EndpointSlice writes this controller made (upstream `EndpointSliceTracker`).
 *
 * The reconciler plans from the informer cache, which lags behind its own writes. Planning from a
 * cache that does not yet show a slice just created would create it again; planning from one that
 * still shows a slice just deleted would try to fill it. So after each write the reconciler records
 * it here, and before planning it asks {@link EndpointSliceWriteTracker.isStale}; when the cache is
 * behind, it retries later instead of planning. Event handlers use
 * {@link EndpointSliceWriteTracker.shouldSync} to skip the echoes of their own writes.
 */
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { LABEL_SERVICE_NAME } from '../../api/labels.ts';

interface WrittenSlice {
  generation: number | undefined;
  resourceVersion: string | undefined;
  deletionExpected: boolean;
}

/** `namespace/service-name` of the Service a slice belongs to, from its label. */
export function serviceKeyOfSlice(slice: V1EndpointSlice): string | undefined {
  const service = slice.metadata?.labels?.[LABEL_SERVICE_NAME];
  if (service === undefined || service === '') return undefined;
  return `${slice.metadata?.namespace ?? ''}/${service}`;
}

function resourceVersionNumber(resourceVersion: string | undefined): bigint | undefined {
  return resourceVersion !== undefined && /^\d+$/.test(resourceVersion) ? BigInt(resourceVersion) : undefined;
}

/**
 * Compares an observed slice with a recorded write: negative when the observation is older, zero when
 * it is the write itself, positive when newer. Generations are compared when both are known, then
 * resourceVersions when both are numbers (as etcd's are); `undefined` when neither can be ordered.
 */
function compareWithWrite(slice: V1EndpointSlice, written: WrittenSlice): number | undefined {
  const generation = slice.metadata?.generation;
  if (generation !== undefined && written.generation !== undefined) {
    if (generation !== written.generation) return generation - written.generation;
  }
  const observed = resourceVersionNumber(slice.metadata?.resourceVersion);
  const recorded = resourceVersionNumber(written.resourceVersion);
  if (observed !== undefined && recorded !== undefined) {
    if (observed === recorded) return 0;
    return observed < recorded ? -1 : 1;
  }
  if (generation !== undefined && written.generation !== undefined) return 0;
  if (
    slice.metadata?.resourceVersion !== undefined &&
    slice.metadata.resourceVersion === written.resourceVersion
  ) {
    return 0;
  }
  return undefined;
}

/** Tracks slices written or deleted per Service so a lagging cache is recognised. */
export class EndpointSliceWriteTracker {
  readonly #byService = new Map<string, Map<string, WrittenSlice>>();

  #entries(serviceKey: string, create: boolean): Map<string, WrittenSlice> | undefined {
    let entries = this.#byService.get(serviceKey);
    if (entries === undefined && create) {
      entries = new Map();
      this.#byService.set(serviceKey, entries);
    }
    return entries;
  }

  /** Records a slice as returned by a successful create or update. */
  recordWrite(slice: V1EndpointSlice): void {
    const serviceKey = serviceKeyOfSlice(slice);
    const uid = slice.metadata?.uid;
    if (serviceKey === undefined || uid === undefined) return;
    this.#entries(serviceKey, true)!.set(uid, {
      generation: slice.metadata?.generation,
      resourceVersion: slice.metadata?.resourceVersion,
      deletionExpected: false,
    });
  }

  /** Records that this controller asked for the slice's deletion. */
  expectDeletion(slice: V1EndpointSlice): void {
    const serviceKey = serviceKeyOfSlice(slice);
    const uid = slice.metadata?.uid;
    if (serviceKey === undefined || uid === undefined) return;
    this.#entries(serviceKey, true)!.set(uid, {
      generation: undefined,
      resourceVersion: undefined,
      deletionExpected: true,
    });
  }

  /**
   * Handles a delete event from the informer and forgets the slice. Returns true when the deletion was
   * not this controller's doing, so the Service must be synced to recreate what is missing.
   */
  handleDeletion(slice: V1EndpointSlice): boolean {
    const serviceKey = serviceKeyOfSlice(slice);
    const uid = slice.metadata?.uid;
    if (serviceKey === undefined || uid === undefined) return true;
    const entries = this.#entries(serviceKey, false);
    const written = entries?.get(uid);
    entries?.delete(uid);
    if (entries?.size === 0) this.#byService.delete(serviceKey);
    return written === undefined || !written.deletionExpected;
  }

  /**
   * True when an add or update event shows something other than this controller's own write: an
   * unknown slice, a newer version, or one that cannot be ordered against the write.
   */
  shouldSync(slice: V1EndpointSlice): boolean {
    const serviceKey = serviceKeyOfSlice(slice);
    const uid = slice.metadata?.uid;
    if (serviceKey === undefined || uid === undefined) return true;
    const written = this.#byService.get(serviceKey)?.get(uid);
    if (written === undefined || written.deletionExpected) return true;
    const order = compareWithWrite(slice, written);
    return order === undefined || order > 0;
  }

  /**
   * True when the cache's slices for a Service are behind this controller's writes: a written slice is
   * missing or older than written, or a slice whose deletion was requested is still there.
   */
  isStale(serviceKey: string, cachedSlices: readonly V1EndpointSlice[]): boolean {
    const entries = this.#byService.get(serviceKey);
    if (entries === undefined) return false;
    const seen = new Set<string>();
    for (const slice of cachedSlices) {
      const uid = slice.metadata?.uid;
      if (uid === undefined) continue;
      seen.add(uid);
      const written = entries.get(uid);
      if (written === undefined) continue;
      if (written.deletionExpected) return true;
      const order = compareWithWrite(slice, written);
      if (order !== undefined && order < 0) return true;
    }
    for (const [uid, written] of entries) {
      if (!written.deletionExpected && !seen.has(uid)) return true;
    }
    return false;
  }

  /** Forgets everything about a Service (it was deleted). */
  forgetService(serviceKey: string): void {
    this.#byService.delete(serviceKey);
  }

  /** Number of slices currently tracked, for metrics and tests. */
  get size(): number {
    let total = 0;
    for (const entries of this.#byService.values()) total += entries.size;
    return total;
  }
}
