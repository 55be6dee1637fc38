import IPCIDR from 'ip-cidr';

/** An IP family as the Service API spells it (`spec.ipFamilies`). */
export type IPFamily = 'IPv4' | 'IPv6';

/** An address reduced to what range arithmetic needs: its family and its value as an integer. */
export interface ParsedIP {
  /** IPv4 or IPv6. */
  readonly family: IPFamily;
  /** The address as an unsigned integer (32 or 128 bits). */
  readonly value: bigint;
}

/**
 * Parses a textual IP address (no prefix, no zone). Returns undefined for anything else,
 * including IPv4 with leading zeros and IPv4-embedded IPv6 notation, which Kubernetes'
 * validation rejects or treats ambiguously.
 */
export function parseIP(text: string): ParsedIP | undefined {
  if (text.length === 0 || /[/%\s]/.test(text)) return undefined;
  const isV6 = text.includes(':');
  if (isV6 && text.includes('.')) return undefined;
  try {
    const address = IPCIDR.createAddress(text);
    return { family: isV6 ? 'IPv6' : 'IPv4', value: BigInt(String(address.bigInteger())) };
  } catch {
    return undefined;
  }
}

/**
 * Formats an address in its canonical form (dotted quad; RFC 5952 for IPv6: lowercase, no
 * leading zeros, the longest run of two or more zero groups as `::`), the form Go's netip and
 * therefore the API server print. Written here because it runs on every allocation and the
 * library formatter costs several microseconds per call.
 */
export function formatIP(family: IPFamily, value: bigint): string {
  if (family === 'IPv4') {
    const n = Number(value);
    return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
  }
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && groups[end] === 0) end++;
    if (end - i > bestLength) {
      bestStart = i;
      bestLength = end - i;
    }
    i = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
