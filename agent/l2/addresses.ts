/**
 * The kernel side of L2 announcement: the announcing node carries the LoadBalancer IP as a host
 * address (/32, or /128 without duplicate address detection) on its LAN interface, so the kernel
 * answers ARP/NDP for it and accepts its traffic for the proxier's rules; it sends gratuitous ARP
 * (IPv4) or an unsolicited Neighbor Advertisement (IPv6) on takeover so neighbours drop the
 * previous holder's MAC at once.
 *
 * Every address is added with a short valid lifetime that the announcer keeps refreshing. If the
 * agent dies (SIGKILL, OOM) nobody refreshes it and the kernel deletes it before the lease
 * expires, so a dead agent never leaves the IP behind to clash with the next holder.
 */
import { execFile } from 'node:child_process';
import { isIPv6 } from 'node:net';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** What the announcer needs from the node's network stack; {@link IpAddressDriver} is the real one. */
export interface AnnouncementAddresses {
  /** One-time setup (ARP sysctls) before the first address is added. */
  prepare(): Promise<void>;
  /** Adds the addresses, or renews their lifetime when present. */
  configure(ips: readonly string[]): Promise<void>;
  /** Removes the addresses; absent ones are not an error. */
  remove(ips: readonly string[]): Promise<void>;
  /** The announced addresses configured on the interface now (ours by label or by lifetime). */
  configured(): Promise<string[]>;
  /** Tells the neighbours that this node now owns the IP (gratuitous ARP / unsolicited NA). */
  announce(ip: string): Promise<void>;
}

/** Options of {@link IpAddressDriver}. */
export interface IpAddressDriverOptions {
  /** The LAN-facing interface, e.g. `eth0`. */
  interface: string;
  /** Seconds the kernel keeps an address that is not refreshed; refresh well within it. */
  lifetimeSeconds: number;
  /**
   * Run every command in this network namespace instead of the agent's own (the dataplane tests
   * run one announcer per simulated node from the test's namespace).
   */
  netns?: string;
  ipPath?: string;
  arpingPath?: string;
  /** `na6` of the SI6 IPv6 toolkit (Debian package `ipv6toolkit`). */
  na6Path?: string;
  sysctlPath?: string;
}

/** Suffix of the IPv4 label that marks addresses as announced LoadBalancer IPs. */
const LABEL_SUFFIX = ':plb';
/** IFNAMSIZ − 1: longer labels are refused by the kernel. */
const MAX_LABEL_LENGTH = 15;

interface IpJsonAddress {
  family?: string;
  local?: string;
  prefixlen?: number;
  label?: string;
  valid_life_time?: number;
}

/** Drives `ip`, `sysctl`, `arping` (iputils-arping) and `na6` (ipv6toolkit). */
export class IpAddressDriver implements AnnouncementAddresses {
  readonly #options: Required<Omit<IpAddressDriverOptions, 'netns'>> & { netns: string | undefined };
  readonly #label: string | undefined;

  constructor(options: IpAddressDriverOptions) {
    this.#options = {
      netns: options.netns,
      interface: options.interface,
      lifetimeSeconds: options.lifetimeSeconds,
      ipPath: options.ipPath ?? '/usr/sbin/ip',
      arpingPath: options.arpingPath ?? '/usr/bin/arping',
      na6Path: options.na6Path ?? '/usr/sbin/na6',
      sysctlPath: options.sysctlPath ?? '/usr/sbin/sysctl',
    };
    const label = `${options.interface}${LABEL_SUFFIX}`;
    this.#label = label.length <= MAX_LABEL_LENGTH ? label : undefined;
  }

  /**
   * arp_ignore=1: answer ARP only for addresses configured on the interface the request came in
   * on (ipvs mode puts every Service IP on a dummy interface of every node, which must not make
   * all nodes answer). arp_announce=2: use the best local address as the ARP source, never the
   * LoadBalancer IP on another interface.
   */
  async prepare(): Promise<void> {
    const device = this.#options.interface;
    for (const scope of ['all', device]) {
      await this.#exec(this.#options.sysctlPath, ['-q', '-w', `net.ipv4.conf.${scope}.arp_ignore=1`]);
      await this.#exec(this.#options.sysctlPath, ['-q', '-w', `net.ipv4.conf.${scope}.arp_announce=2`]);
    }
  }

  async configure(ips: readonly string[]): Promise<void> {
    if (ips.length === 0) return;
    const lifetime = String(this.#options.lifetimeSeconds);
    await this.#batch(
      ips.map((ip) => [
        'addr',
        'replace',
        isIPv6(ip) ? `${ip}/128` : `${ip}/32`,
        'dev',
        this.#options.interface,
        ...(isIPv6(ip) ? ['nodad'] : this.#label === undefined ? [] : ['label', this.#label]),
        'valid_lft',
        lifetime,
        'preferred_lft',
        lifetime,
      ]),
    );
  }

  async remove(ips: readonly string[]): Promise<void> {
    for (const ip of ips) {
      const prefix = isIPv6(ip) ? `${ip}/128` : `${ip}/32`;
      try {
        await this.#ip(['addr', 'del', prefix, 'dev', this.#options.interface]);
      } catch (error) {
        if (!/Cannot assign requested address|not found|No such/i.test(String(error))) throw error;
      }
    }
  }

  /**
   * Host addresses with a finite lifetime are ours: the node's own addresses are either permanent
   * or prefixes wider than a host route. IPv4 ones must also carry our label when it fits.
   */
  async configured(): Promise<string[]> {
    const out = await this.#ip(['-j', 'addr', 'show', 'dev', this.#options.interface]);
    const links = JSON.parse(out === '' ? '[]' : out) as { addr_info?: IpJsonAddress[] }[];
    const found: string[] = [];
    for (const address of links.flatMap((link) => link.addr_info ?? [])) {
      if (address.local === undefined) continue;
      const hostPrefix = address.family === 'inet6' ? 128 : 32;
      const finite = address.valid_life_time !== undefined && address.valid_life_time < 0xffffffff;
      const labelled =
        address.family === 'inet6' || this.#label === undefined || address.label === this.#label;
      if (address.prefixlen === hostPrefix && finite && labelled) found.push(address.local);
    }
    return found;
  }

  /**
   * IPv4: `arping -U` (sender = target = the IP, which updates every neighbour's cache entry).
   * IPv6: an unsolicited Neighbor Advertisement to all nodes (ff02::1) from the IP itself, with
   * the Override flag and this interface's MAC as target link-layer address, which RFC 4861
   * makes neighbours replace a cached entry with (the kernel sends none for a `nodad` address:
   * without DAD there is no completion that would trigger its own `ndisc_notify`).
   */
  async announce(ip: string): Promise<void> {
    if (isIPv6(ip)) {
      await this.#exec(this.#options.na6Path, [
        '-i',
        this.#options.interface,
        '-s',
        ip,
        '-d',
        'ff02::1',
        '-t',
        ip,
        '-o',
        '-e',
      ]);
      return;
    }
    await this.#exec(this.#options.arpingPath, [
      '-q',
      '-U',
      '-c',
      '1',
      '-w',
      '1',
      '-I',
      this.#options.interface,
      ip,
    ]);
  }

  #ip(args: readonly string[]): Promise<string> {
    const namespaced = this.#options.netns === undefined ? args : ['-n', this.#options.netns, ...args];
    return run(this.#options.ipPath, namespaced);
  }

  #exec(program: string, args: readonly string[]): Promise<string> {
    if (this.#options.netns === undefined) return run(program, args);
    return run(this.#options.ipPath, ['netns', 'exec', this.#options.netns, program, ...args]);
  }

  #batch(commands: readonly (readonly string[])[]): Promise<string> {
    const script = `${commands.map((command) => command.join(' ')).join('\n')}\n`;
    const args = [...(this.#options.netns === undefined ? [] : ['-n', this.#options.netns]), '-batch', '-'];
    return run(this.#options.ipPath, args, script);
  }
}

async function run(program: string, args: readonly string[], input?: string): Promise<string> {
  try {
    const child = execFileAsync(program, [...args], { encoding: 'utf8', timeout: 10_000 });
    if (input !== undefined) child.child.stdin?.end(input);
    const { stdout } = await child;
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    const detail = typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : String(error);
    throw new Error(`${program} ${args.join(' ')}: ${detail}`);
  }
}
