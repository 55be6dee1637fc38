import { InvalidRangeError } from './errors.ts';
import type { AllocationRange } from './range.ts';

/** kube-apiserver's default `--service-node-port-range`. */
export const DEFAULT_NODE_PORT_RANGE = '30000-32767';

const RANGE_FLAG = '--service-node-port-range';

/**
 * Size of the static band for a port range of `size` ports: min(max(16, size/32), 128), or 0
 * when the range has 16 ports or fewer.
 */
export function nodePortStaticBandSize(size: number): number {
  if (size <= 16) return 0;
  return Math.min(Math.max(16, Math.floor(size / 32)), 128);
}

/** An inclusive port range [base, base + size − 1]; offset i is port base + i. */
export class NodePortRange implements AllocationRange<number> {
  /** `first-last`, the form Kubernetes prints in its error messages. */
  readonly spec: string;
  /** Constant: a port range has no family. */
  readonly kind = 'NodePort';
  /** First port of the range. */
  readonly base: number;
  /** Number of ports. */
  readonly size: number;
  /** See {@link AllocationRange.staticBandSize}. */
  readonly staticBandSize: number;

  /**
   * @param range `first-last` (inclusive), `first+count-1` or a single port, as upstream's
   *   port range flag accepts
   * @throws InvalidRangeError when it does not parse or leaves 1-65535
   */
  constructor(range: string = DEFAULT_NODE_PORT_RANGE) {
    const match = /^([0-9]{1,5})(?:([-+])([0-9]{1,5}))?$/.exec(range.trim());
    if (match === null) {
      throw new InvalidRangeError(
        `${RANGE_FLAG}: Invalid value: "${range}": must be a port range such as 30000-32767`,
      );
    }
    const first = Number(match[1]);
    const second = match[3] === undefined ? 0 : Number(match[3]);
    const last = match[2] === '+' ? first + second : match[2] === '-' ? second : first;
    if (first < 1 || last > 65535 || last < first) {
      throw new InvalidRangeError(
        `${RANGE_FLAG}: Invalid value: "${range}": must be a non-empty range of ports within 1-65535`,
      );
    }
    this.base = first;
    this.size = last - first + 1;
    this.spec = `${first}-${last}`;
    this.staticBandSize = nodePortStaticBandSize(this.size);
  }

  /** See {@link AllocationRange.isValid}. */
  isValid(value: number): boolean {
    return Number.isInteger(value) && value >= 1 && value <= 65535;
  }

  /** Whether `port` is inside the range. */
  contains(port: number): boolean {
    return this.offsetOf(port) !== undefined;
  }

  /** See {@link AllocationRange.offsetOf}. */
  offsetOf(value: number): number | undefined {
    if (!Number.isInteger(value)) return undefined;
    const offset = value - this.base;
    return offset >= 0 && offset < this.size ? offset : undefined;
  }

  /** See {@link AllocationRange.valueAt}. */
  valueAt(offset: number): number {
    if (!Number.isInteger(offset) || offset < 0 || offset >= this.size) {
      throw new RangeError(`offset ${offset} is outside the port range ${this.spec}`);
    }
    return this.base + offset;
  }

  /** Upstream's ErrNotInRange text. */
  notInRangeMessage(): string {
    return `provided port is not in the valid range. The range of valid ports is ${this.spec}`;
  }
}
