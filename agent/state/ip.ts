/**
 * Small address helpers built on node:net, so the agent needs no parser of its own for the few
 * questions it asks (which family, is this address inside that CIDR).
 */
import { BlockList, isIP } from 'node:net';
import type { IPFamily } from './types.ts';

/** The family of an IP address, or null when the text is not an address. */
export function ipFamilyOf(address: string): IPFamily | null {
  const version = isIP(address);
  if (version === 4) return 'IPv4';
  if (version === 6) return 'IPv6';
  return null;
}

/** The family of a CIDR (`10.0.0.0/8`, `fd00::/64`), or null when malformed. */
export function cidrFamilyOf(cidr: string): IPFamily | null {
  const parsed = parseCidr(cidr);
  return parsed === null ? null : parsed.family;
}

interface ParsedCidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: IPFamily;
}

function parseCidr(cidr: string): ParsedCidr | null {
  const slash = cidr.indexOf('/');
  if (slash < 0) return null;
  const address = cidr.slice(0, slash);
  const prefixText = cidr.slice(slash + 1);
  const family = ipFamilyOf(address);
  if (family === null || !/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  if (prefix > (family === 'IPv4' ? 32 : 128)) return null;
  return { address, prefix, family };
}

/** True when `address` lies inside `cidr`; false for mismatched families or malformed input. */
export function cidrContains(cidr: string, address: string): boolean {
  const parsed = parseCidr(cidr);
  const family = ipFamilyOf(address);
  if (parsed === null || family !== parsed.family) return false;
  const type = family === 'IPv4' ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  list.addSubnet(parsed.address, parsed.prefix, type);
  return list.check(address, type);
}

/** `ip:port` with an IPv6 address bracketed, as Go's net.JoinHostPort writes it. */
export function joinHostPort(ip: string, port: number): string {
  return ipFamilyOf(ip) === 'IPv6' ? `[${ip}]:${port}` : `${ip}:${port}`;
}
