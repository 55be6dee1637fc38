/**
 * IP address and CIDR parsing with Kubernetes' semantics and messages.
 *
 * Kubernetes parses addresses with `netutils.ParseIPSloppy` (Go 1.16's parser, which reads IPv4
 * octets with leading zeros as decimal) and then, under strict validation, rejects what Go's
 * `netip` would not accept: leading zeros (other software reads them as octal, so one string could
 * name two addresses) and IPv4-mapped IPv6 addresses. Node's own `net` module is strict in a
 * different way and cannot tell these cases apart, so the parser is written here.
 */

import { type FieldError, invalid } from './field-errors.ts';

/** The two IP families, spelled as in `spec.ipFamilies`. */
export type IPFamily = 'IPv4' | 'IPv6';

/** A parsed address: 16 bytes, IPv4 held in its IPv4-mapped IPv6 form, as Go's net.IP does. */
export interface ParsedIP {
  /** The address bytes in network order. */
  readonly bytes: Uint8Array;
  /** True when the address is IPv4 (Go's `To4() != nil`), including IPv4-mapped IPv6 input. */
  readonly isIPv4: boolean;
}

const v4MappedPrefix = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

function hasV4MappedPrefix(bytes: Uint8Array): boolean {
  return v4MappedPrefix.every((byte, i) => bytes[i] === byte);
}

/** Reads leading decimal digits; Go's `dtoi` (no limit on leading zeros). */
function readDecimal(text: string): { value: number; length: number } | undefined {
  let value = 0;
  let length = 0;
  while (length < text.length && text[length]! >= '0' && text[length]! <= '9') {
    value = value * 10 + (text.charCodeAt(length) - 48);
    if (value >= 0xffffff) return undefined;
    length++;
  }
  return length === 0 ? undefined : { value, length };
}

/** Reads leading hex digits; Go's `xtoi`. */
function readHex(text: string): { value: number; length: number } | undefined {
  let value = 0;
  let length = 0;
  while (length < text.length && /[0-9a-fA-F]/.test(text[length]!)) {
    value = value * 16 + Number.parseInt(text[length]!, 16);
    if (value >= 0xffffff) return undefined;
    length++;
  }
  return length === 0 ? undefined : { value, length };
}

function parseIPv4Bytes(text: string): number[] | undefined {
  const octets: number[] = [];
  let rest = text;
  for (let i = 0; i < 4; i++) {
    if (rest.length === 0) return undefined;
    if (i > 0) {
      if (rest[0] !== '.') return undefined;
      rest = rest.slice(1);
    }
    const number = readDecimal(rest);
    if (number === undefined || number.value > 0xff) return undefined;
    octets.push(number.value);
    rest = rest.slice(number.length);
  }
  return rest.length === 0 ? octets : undefined;
}

function parseIPv6Bytes(input: string): Uint8Array | undefined {
  const bytes = new Uint8Array(16);
  let text = input;
  let ellipsis = -1;
  if (text.startsWith('::')) {
    ellipsis = 0;
    text = text.slice(2);
    if (text.length === 0) return bytes;
  }
  let i = 0;
  while (i < 16) {
    const group = readHex(text);
    if (group === undefined || group.value > 0xffff) return undefined;
    if (group.length < text.length && text[group.length] === '.') {
      if (ellipsis < 0 && i !== 12) return undefined;
      if (i + 4 > 16) return undefined;
      const octets = parseIPv4Bytes(text);
      if (octets === undefined) return undefined;
      bytes.set(octets, i);
      text = '';
      i += 4;
      break;
    }
    bytes[i] = group.value >> 8;
    bytes[i + 1] = group.value & 0xff;
    i += 2;
    text = text.slice(group.length);
    if (text.length === 0) break;
    if (text[0] !== ':' || text.length === 1) return undefined;
    text = text.slice(1);
    if (text[0] === ':') {
      if (ellipsis >= 0) return undefined;
      ellipsis = i;
      text = text.slice(1);
      if (text.length === 0) break;
    }
  }
  if (text.length !== 0) return undefined;
  if (i < 16) {
    if (ellipsis < 0) return undefined;
    const shift = 16 - i;
    bytes.copyWithin(ellipsis + shift, ellipsis, i);
    bytes.fill(0, ellipsis, ellipsis + shift);
  } else if (ellipsis >= 0) {
    return undefined;
  }
  return bytes;
}

/**
 * Parses an address the way `netutils.ParseIPSloppy` does: IPv4 octets may carry leading zeros
 * (read as decimal), IPv6 may embed a dotted IPv4 tail. Returns undefined for anything else.
 */
export function parseIPSloppy(text: string): ParsedIP | undefined {
  for (const ch of text) {
    if (ch === '.') {
      const octets = parseIPv4Bytes(text);
      if (octets === undefined) return undefined;
      return { bytes: Uint8Array.from([...v4MappedPrefix, ...octets]), isIPv4: true };
    }
    if (ch === ':') {
      const bytes = parseIPv6Bytes(text);
      if (bytes === undefined) return undefined;
      return { bytes, isIPv4: hasV4MappedPrefix(bytes) };
    }
  }
  return undefined;
}

/**
 * True when a string the sloppy parser accepted would also be accepted by Go's `netip`: no IPv4
 * octet with a leading zero and no IPv6 group longer than four digits.
 */
function isNetipSyntax(text: string): boolean {
  const tail = text.slice(text.lastIndexOf(':') + 1);
  if (tail.includes('.') && tail.split('.').some((octet) => octet.length > 1 && octet.startsWith('0')))
    return false;
  const groups = text.includes(':') ? text.split(':').filter((group) => !group.includes('.')) : [];
  return groups.every((group) => group.length <= 4);
}

/** Go's `net.IP.String()`: dotted quad for IPv4, RFC 5952 text for IPv6. */
export function formatIP(ip: ParsedIP): string {
  const { bytes } = ip;
  if (ip.isIPv4) return Array.from(bytes.subarray(12)).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLength = 0;
  for (let start = 0; start < 8; ) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength && end - start >= 2) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end === start ? start + 1 : end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** The family of an address (IPv4-mapped IPv6 counts as IPv4, as in Kubernetes), or undefined. */
export function ipFamilyOf(text: string): IPFamily | undefined {
  const ip = parseIPSloppy(text);
  if (ip === undefined) return undefined;
  return ip.isIPv4 ? 'IPv4' : 'IPv6';
}

const invalidIPMessage = 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)';

/**
 * Validates an address in a field that predates strict parsing (clusterIPs, externalIPs, endpoint
 * addresses): any spelling Go accepts, including uppercase or uncompressed IPv6, but with
 * `strict` no leading zeros and no IPv4-mapped IPv6.
 */
export function isValidIPForLegacyField(field: string, value: string, strict = true): FieldError[] {
  const ip = parseIPSloppy(value);
  if (ip === undefined) return [invalid(field, value, invalidIPMessage)];
  if (!strict) return [];
  const errors: FieldError[] = [];
  if (!isNetipSyntax(value)) errors.push(invalid(field, value, 'must not have leading 0s'));
  if (value.includes(':') && hasV4MappedPrefix(ip.bytes))
    errors.push(invalid(field, value, 'must not be an IPv4-mapped IPv6 address'));
  return errors;
}

/** Validates an address in a newer field: strict, and in canonical form. */
export function isValidIP(field: string, value: string): FieldError[] {
  const errors = isValidIPForLegacyField(field, value, true);
  if (errors.length > 0) return errors;
  const canonical = formatIP(parseIPSloppy(value)!);
  return value === canonical ? [] : [invalid(field, value, `must be in canonical form ("${canonical}")`)];
}

/** The address family check EndpointSlices use for `addressType: IPv4`. */
export function isValidIPv4Address(field: string, value: string): FieldError[] {
  const ip = parseIPSloppy(value);
  return ip?.isIPv4 ? [] : [invalid(field, value, 'must be a valid IPv4 address')];
}

/** The address family check EndpointSlices use for `addressType: IPv6`. */
export function isValidIPv6Address(field: string, value: string): FieldError[] {
  const ip = parseIPSloppy(value);
  return ip !== undefined && !ip.isIPv4 ? [] : [invalid(field, value, 'must be a valid IPv6 address')];
}

/** A parsed CIDR: the network address (host bits cleared) and the prefix length. */
export interface ParsedCIDR {
  /** The address as written, host bits kept. */
  readonly ip: ParsedIP;
  /** The network address, host bits cleared. */
  readonly network: ParsedIP;
  /** The prefix length, counted in the family's own bits (0-32 or 0-128). */
  readonly prefixLength: number;
}

/**
 * Parses a CIDR as `netutils.ParseCIDRSloppy`: the address as {@link parseIPSloppy} (an IPv4
 * address only in dotted form), a decimal prefix length (leading zeros allowed) within the family.
 */
export function parseCIDRSloppy(text: string): ParsedCIDR | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = text.slice(0, slash);
  const maskText = text.slice(slash + 1);
  const octets = parseIPv4Bytes(address);
  let ip: ParsedIP | undefined;
  let bits: number;
  if (octets !== undefined) {
    ip = { bytes: Uint8Array.from([...v4MappedPrefix, ...octets]), isIPv4: true };
    bits = 32;
  } else {
    const bytes = parseIPv6Bytes(address);
    ip = bytes === undefined ? undefined : { bytes, isIPv4: false };
    bits = 128;
  }
  const mask = readDecimal(maskText);
  if (ip === undefined || mask === undefined || mask.length !== maskText.length || mask.value > bits)
    return undefined;
  const hostBitsFrom = 128 - bits + mask.value;
  const networkBytes = Uint8Array.from(ip.bytes);
  for (let bit = hostBitsFrom; bit < 128; bit++) networkBytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { ip, network: { bytes: networkBytes, isIPv4: ip.isIPv4 }, prefixLength: mask.value };
}

/** Go's `net.IPNet.String()` of a parsed CIDR: network address and prefix length. */
export function formatCIDR(cidr: ParsedCIDR): string {
  return `${formatIP(cidr.network)}/${cidr.prefixLength}`;
}

const invalidCIDRMessage = 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)';

/**
 * Validates a CIDR in a field that predates strict parsing (loadBalancerSourceRanges). With
 * `strict`: no leading zeros in the address or prefix length, no IPv4-mapped IPv6, and no bits
 * set after the prefix (`10.0.0.1/8` is ambiguous: a subnet or an interface address?).
 */
export function isValidCIDRForLegacyField(field: string, value: string, strict = true): FieldError[] {
  const cidr = parseCIDRSloppy(value);
  if (cidr === undefined) return [invalid(field, value, invalidCIDRMessage)];
  if (!strict) return [];
  const slash = value.indexOf('/');
  const address = value.slice(0, slash);
  const mask = value.slice(slash + 1);
  if (!isNetipSyntax(address) || (mask.length > 1 && mask.startsWith('0')))
    return [invalid(field, value, 'must not have leading 0s in IP or prefix length')];
  if (address.includes(':') && hasV4MappedPrefix(cidr.ip.bytes))
    return [invalid(field, value, 'must not have an IPv4-mapped IPv6 address')];
  if (cidr.ip.bytes.some((byte, i) => byte !== cidr.network.bytes[i]))
    return [invalid(field, value, 'must not have bits set beyond the prefix length')];
  return [];
}

/** Validates a CIDR in a newer field: strict, and in canonical form. */
export function isValidCIDR(field: string, value: string): FieldError[] {
  const errors = isValidCIDRForLegacyField(field, value, true);
  if (errors.length > 0) return errors;
  const canonical = formatCIDR(parseCIDRSloppy(value)!);
  return value === canonical ? [] : [invalid(field, value, `must be in canonical form ("${canonical}")`)];
}

function isUnspecified(ip: ParsedIP): boolean {
  const significant = ip.isIPv4 ? ip.bytes.subarray(12) : ip.bytes;
  return significant.every((byte) => byte === 0);
}

function isLoopback(ip: ParsedIP): boolean {
  if (ip.isIPv4) return ip.bytes[12] === 127;
  return ip.bytes.subarray(0, 15).every((byte) => byte === 0) && ip.bytes[15] === 1;
}

function isLinkLocalUnicast(ip: ParsedIP): boolean {
  if (ip.isIPv4) return ip.bytes[12] === 169 && ip.bytes[13] === 254;
  return ip.bytes[0] === 0xfe && (ip.bytes[1]! & 0xc0) === 0x80;
}

function isLinkLocalMulticast(ip: ParsedIP): boolean {
  if (ip.isIPv4) return ip.bytes[12] === 224 && ip.bytes[13] === 0 && ip.bytes[14] === 0;
  // Go matches the scope nibble only, so ff12:: (transient, link-local scope) counts too.
  return ip.bytes[0] === 0xff && (ip.bytes[1]! & 0x0f) === 0x02;
}

/**
 * Rejects addresses that make no sense as a Service backend or external IP (`ValidateNonSpecialIP`):
 * unspecified, loopback, link-local unicast (node-local services such as cloud metadata) and
 * link-local multicast.
 */
export function validateNonSpecialIP(field: string, value: string): FieldError[] {
  const ip = parseIPSloppy(value);
  if (ip === undefined) return [invalid(field, value, 'must be a valid IP address')];
  const errors: FieldError[] = [];
  if (isUnspecified(ip)) errors.push(invalid(field, value, `may not be unspecified (${value})`));
  if (isLoopback(ip))
    errors.push(invalid(field, value, 'may not be in the loopback range (127.0.0.0/8, ::1/128)'));
  if (isLinkLocalUnicast(ip))
    errors.push(invalid(field, value, 'may not be in the link-local range (169.254.0.0/16, fe80::/10)'));
  if (isLinkLocalMulticast(ip))
    errors.push(
      invalid(field, value, 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)'),
    );
  return errors;
}
