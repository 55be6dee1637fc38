import { Bitmap } from './bitmap.ts';
import { ClusterIPRange } from './cluster-ip-range.ts';
import { AllocationError, RangeMismatchError } from './errors.ts';
import { NodePortRange } from './node-port-range.ts';
import type { AllocationRange } from './range.ts';

/** Returns an integer in [0, bound); injected so tests can make dynamic allocation predictable. */
export type RandomIndex = (bound: number) => number;

/** `Math.random`-based {@link RandomIndex}: spreading choices is all it is for, not secrecy. */
export const mathRandomIndex: RandomIndex = (bound) => Math.floor(Math.random() * bound);

/** A copy of an allocator's state, tagged with the range it belongs to. */
export interface AllocatorSnapshot {
  /** {@link AllocationRange.spec} of the range. */
  readonly range: string;
  /** {@link AllocationRange.kind} of the range. */
  readonly kind: string;
  /** Which offsets are allocated. */
  readonly bitmap: Bitmap;
}

/** Options shared by the allocators. */
export interface AllocatorOptions {
  /** Random source for dynamic allocation; defaults to {@link mathRandomIndex}. */
  readonly random?: RandomIndex;
}

/**
 * A client-free allocator over one range: pure in-memory bookkeeping in a {@link Bitmap}.
 * Persistence, batching and compare-and-swap live in the ConfigMap store, which drives one of
 * these per write attempt.
 */
export class RangeAllocator<T extends string | number> {
  /** The range this allocator hands out values from. */
  readonly range: AllocationRange<T>;
  #bitmap: Bitmap;
  readonly #random: RandomIndex;
  readonly #noun: string;

  /**
   * @param range the range to allocate from
   * @param noun `IP` or `port`, as upstream's messages name the value
   * @param options random source
   */
  constructor(range: AllocationRange<T>, noun: string, options: AllocatorOptions = {}) {
    this.range = range;
    this.#noun = noun;
    this.#bitmap = new Bitmap(range.size);
    this.#random = options.random ?? mathRandomIndex;
  }

  /** Number of allocated values. */
  get used(): number {
    return this.#bitmap.count;
  }

  /** Number of values still free. */
  get free(): number {
    return this.#bitmap.free;
  }

  /**
   * Allocates some free value. Upstream's strategy: a random start in the upper (dynamic) band
   * and a forward scan with wrap-around inside it; only when that band is full, the same in the
   * lower (static) band. Random starts make two replicas working from the same state unlikely to
   * pick the same value, so compare-and-swap retries stay rare.
   * @throws AllocationError `Full` when no value is free
   */
  allocateNext(): T {
    const { size, staticBandSize } = this.range;
    const bands: Array<[number, number]> = [
      [staticBandSize, size],
      [0, staticBandSize],
    ];
    for (const [lo, hi] of bands) {
      if (hi <= lo) continue;
      const offset = this.#bitmap.findFree(lo + this.#random(hi - lo), lo, hi);
      if (offset !== -1) {
        this.#bitmap.set(offset);
        return this.range.valueAt(offset);
      }
    }
    throw new AllocationError('Full', 'range is full');
  }

  /**
   * Allocates exactly `value`, which may lie in either band.
   * @throws AllocationError `InvalidValue`, `NotInRange` (message names the range) or `AlreadyAllocated`
   */
  allocate(value: T): void {
    const offset = this.#offsetOrThrow(value);
    if (!this.#bitmap.set(offset)) {
      throw new AllocationError('AlreadyAllocated', `provided ${this.#noun} is already allocated`);
    }
  }

  #offsetOrThrow(value: T): number {
    if (!this.range.isValid(value)) {
      throw new AllocationError('InvalidValue', `${JSON.stringify(value)} is not a valid ${this.#noun}`);
    }
    const offset = this.range.offsetOf(value);
    if (offset === undefined) throw new AllocationError('NotInRange', this.range.notInRangeMessage(value));
    return offset;
  }

  /**
   * Releases `value`. Returns false when it was not allocated or is outside the range: releasing
   * is idempotent so a retried delete never fails.
   */
  release(value: T): boolean {
    const offset = this.range.offsetOf(value);
    return offset !== undefined && this.#bitmap.clear(offset);
  }

  /** Whether `value` is allocated. */
  has(value: T): boolean {
    const offset = this.range.offsetOf(value);
    return offset !== undefined && this.#bitmap.test(offset);
  }

  /** All allocated values, in range order. */
  *allocated(): Generator<T> {
    for (const offset of this.#bitmap.setIndexes()) yield this.range.valueAt(offset);
  }

  /** A copy of the state; later changes to the allocator do not affect it. */
  snapshot(): AllocatorSnapshot {
    return { range: this.range.spec, kind: this.range.kind, bitmap: this.#bitmap.clone() };
  }

  /**
   * Replaces the state with a snapshot of the same range.
   * @throws RangeMismatchError when the snapshot belongs to another range; the state is unchanged
   */
  restore(snapshot: AllocatorSnapshot): void {
    if (snapshot.range !== this.range.spec || snapshot.kind !== this.range.kind) {
      throw new RangeMismatchError(
        `snapshot of ${snapshot.kind} range ${snapshot.range} cannot be restored into the ${this.range.kind} range ${this.range.spec}`,
      );
    }
    if (snapshot.bitmap.size !== this.range.size) {
      throw new RangeMismatchError(
        `snapshot bitmap has ${snapshot.bitmap.size} entries but the range ${this.range.spec} has ${this.range.size}`,
      );
    }
    this.#bitmap = snapshot.bitmap.clone();
  }
}

/** Allocates ClusterIPs of one family from one service CIDR. */
export class ClusterIPAllocator extends RangeAllocator<string> {
  /**
   * @param range the service CIDR, or its text (validated as kube-apiserver's flag is)
   * @param options random source
   */
  constructor(range: ClusterIPRange | string, options: AllocatorOptions = {}) {
    super(typeof range === 'string' ? new ClusterIPRange(range) : range, 'IP', options);
  }
}

/** Allocates NodePorts (and health check node ports) from the node port range. */
export class NodePortAllocator extends RangeAllocator<number> {
  /**
   * @param range the port range, or its text; defaults to 30000-32767
   * @param options random source
   */
  constructor(range: NodePortRange | string = new NodePortRange(), options: AllocatorOptions = {}) {
    super(typeof range === 'string' ? new NodePortRange(range) : range, 'port', options);
  }
}
