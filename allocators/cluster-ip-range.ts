import IPCIDR from 'ip-cidr';
import { InvalidRangeError } from './errors.ts';
import { formatIP, type IPFamily, parseIP } from './ip.ts';
import type { AllocationRange } from './range.ts';

/** Host bits a service CIDR may have at most (upstream `maxCIDRBits`): /12 for IPv4, /108 for IPv6. */
export const MAX_SERVICE_CIDR_HOST_BITS = 20;

/** Upstream keeps at most this many IPv6 addresses in the bitmap, whatever the prefix. */
export const IPV6_RANGE_CAP = 65536n;

/** Name of the option the range errors refer to; Portico takes the same flag as kube-apiserver. */
const RANGE_FLAG = '--service-cluster-ip-range';

/**
 * Size of the static band for a CIDR of `cidrSize` addresses: min(max(16, size/16), 256), or 0
 * when the CIDR has 16 addresses or fewer. Uses the full CIDR size, not the usable count, as
 * upstream does.
 */
export function clusterIPStaticBandSize(cidrSize: bigint): number {
  if (cidrSize <= 16n) return 0;
  const offset = cidrSize / 16n;
  if (offset < 16n) return 16;
  if (offset > 256n) return 256;
  return Number(offset);
}

/**
 * The allocatable addresses of one service CIDR, laid out as upstream's bitmap: offset i is the
 * address network + 1 + i. The network address is never allocatable, nor the IPv4 broadcast
 * address; an IPv6 range is capped at 65536 addresses minus the network address, so a /108 uses
 * only its first 65535 host addresses.
 */
export class ClusterIPRange implements AllocationRange<string> {
  /** The CIDR in canonical form (network address, shortest notation). */
  readonly spec: string;
  /** IP family of the CIDR. */
  readonly kind: IPFamily;
  /** Prefix length of the CIDR. */
  readonly prefixLength: number;
  /** Number of addresses in the CIDR, reserved ones included. */
  readonly cidrSize: bigint;
  /** Number of allocatable addresses. */
  readonly size: number;
  /** See {@link AllocationRange.staticBandSize}. */
  readonly staticBandSize: number;
  /** Integer value of the address at offset 0 (network address + 1). */
  readonly base: bigint;
  readonly #network: bigint;

  /**
   * @param cidr e.g. `10.96.0.0/12` or `fd00:10:96::/108`; host bits are masked off as
   *   kube-apiserver's flag parsing does
   * @throws InvalidRangeError when the CIDR does not parse or has more than 20 host bits
   */
  constructor(cidr: string) {
    const slash = cidr.indexOf('/');
    const address = slash === -1 ? undefined : parseIP(cidr.slice(0, slash));
    const prefixText = slash === -1 ? '' : cidr.slice(slash + 1);
    const bits = address?.family === 'IPv6' ? 128 : 32;
    if (address === undefined || !/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
      throw new InvalidRangeError(
        `${RANGE_FLAG}: Invalid value: "${cidr}": must be a valid CIDR (e.g. 10.96.0.0/12)`,
      );
    }
    const prefixLength = Number(prefixText);
    if (bits - prefixLength > MAX_SERVICE_CIDR_HOST_BITS) {
      throw new InvalidRangeError(
        `specified ${RANGE_FLAG} is too large; for ${bits}-bit addresses, the mask must be >= ${bits - MAX_SERVICE_CIDR_HOST_BITS}`,
      );
    }
    // ip-cidr masks the host bits and gives the network address.
    const parsed = new IPCIDR(cidr);
    this.#network = parsed.start<bigint>({ type: 'bigInteger' });
    this.kind = address.family;
    this.prefixLength = prefixLength;
    this.cidrSize = 1n << BigInt(bits - prefixLength);
    this.spec = `${formatIP(this.kind, this.#network)}/${prefixLength}`;
    let usable = this.kind === 'IPv6' && this.cidrSize > IPV6_RANGE_CAP ? IPV6_RANGE_CAP : this.cidrSize;
    if (this.kind === 'IPv4') usable -= 1n;
    usable -= 1n;
    this.size = usable < 0n ? 0 : Number(usable);
    this.base = this.#network + 1n;
    this.staticBandSize = clusterIPStaticBandSize(this.cidrSize);
  }

  /** See {@link AllocationRange.isValid}. */
  isValid(value: string): boolean {
    return parseIP(value) !== undefined;
  }

  /** Whether `ip` is an allocatable address of this range. */
  contains(ip: string): boolean {
    return this.offsetOf(ip) !== undefined;
  }

  /** See {@link AllocationRange.offsetOf}. Addresses of the other family are outside. */
  offsetOf(value: string): number | undefined {
    const parsed = parseIP(value);
    if (parsed === undefined || parsed.family !== this.kind) return undefined;
    const offset = parsed.value - this.base;
    if (offset < 0n || offset >= BigInt(this.size)) return undefined;
    return Number(offset);
  }

  /** See {@link AllocationRange.valueAt}. */
  valueAt(offset: number): string {
    if (!Number.isInteger(offset) || offset < 0 || offset >= this.size) {
      throw new RangeError(`offset ${offset} is outside the range ${this.spec} (size ${this.size})`);
    }
    return formatIP(this.kind, this.base + BigInt(offset));
  }

  /** Upstream's ErrNotInRange text. */
  notInRangeMessage(value: string): string {
    return `the provided IP (${value}) is not in the valid range. The range of valid IPs is ${this.spec}`;
  }
}

/**
 * Parses the comma-separated `--service-cluster-ip-range` value: one CIDR, or two of different
 * families for dual-stack (the first is the cluster's default family).
 * @throws InvalidRangeError with upstream's messages
 */
export function parseServiceClusterIPRanges(flag: string): ClusterIPRange[] {
  const entries = flag.split(',').map((entry) => entry.trim());
  if (flag.trim() === '') {
    throw new InvalidRangeError(`${RANGE_FLAG}: Required value: at least one service CIDR is required`);
  }
  if (entries.length > 2) {
    throw new InvalidRangeError(
      `${RANGE_FLAG}: Invalid value: "${flag}": must not contain more than two entries`,
    );
  }
  const ranges = entries.map((entry) => new ClusterIPRange(entry));
  if (ranges.length === 2 && ranges[0]!.kind === ranges[1]!.kind) {
    throw new InvalidRangeError(
      `${RANGE_FLAG}: Invalid value: "${flag}": [0] and [1] must be of different IP family`,
    );
  }
  return ranges;
}
