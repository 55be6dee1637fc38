/**
 * What an allocator needs from a range: a bijection between the values users see (IP strings,
 * port numbers) and bitmap offsets [0, size), plus the size of the static band.
 */
export interface AllocationRange<T extends string | number> {
  /** The range as configured and as stored in the ConfigMap, e.g. `10.96.0.0/12` or `30000-32767`. */
  readonly spec: string;
  /** `IPv4`, `IPv6` or `NodePort`: what the ConfigMap records next to the range. */
  readonly kind: string;
  /** Number of allocatable values, i.e. the bitmap size. */
  readonly size: number;
  /**
   * Offsets [0, staticBandSize) form the lower band that dynamic allocation uses only when the
   * upper band is full, so users who pick values by hand rarely collide with the allocator.
   */
  readonly staticBandSize: number;
  /** Whether `value` is well-formed for this kind of range (a valid IP, a port number). */
  isValid(value: T): boolean;
  /** Bitmap offset of `value`, or undefined when it is invalid or outside the allocatable range. */
  offsetOf(value: T): number | undefined;
  /** The value at a bitmap offset in [0, size). */
  valueAt(offset: number): T;
  /** The allocator's message for a value outside the range, naming the valid range. */
  notInRangeMessage(value: T): string;
}
