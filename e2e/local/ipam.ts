/** Converts dotted IPv4 to its 32-bit value. */
export function ipv4ToNumber(address: string): number {
  const parts = address.split('.');
  if (parts.length !== 4) throw new Error(`Invalid value: "${address}": must be a valid IPv4 address`);
  let value = 0;
  for (const part of parts) {
    const octet = Number(part);
    if (!/^\d{1,3}$/.test(part) || octet > 255) {
      throw new Error(`Invalid value: "${address}": must be a valid IPv4 address`);
    }
    value = value * 256 + octet;
  }
  return value;
}

/** Converts a 32-bit value to dotted IPv4. */
export function numberToIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/**
 * Parses `a.b.c.d/len` into its network address and prefix length, rejecting host bits. `field`
 * names the setting in error messages (a node's `podCIDR`, or a flag such as `--pod-cidr`).
 */
export function parseIpv4Cidr(cidr: string, field = 'podCIDR'): { network: number; prefixLength: number } {
  const [address, lengthText] = cidr.split('/');
  const prefixLength = Number(lengthText);
  const invalid = `${field}: Invalid value: "${cidr}": must be a valid IPv4 CIDR`;
  if (address === undefined || !/^\d{1,2}$/.test(lengthText ?? '') || prefixLength > 32) {
    throw new Error(invalid);
  }
  let network: number;
  try {
    network = ipv4ToNumber(address);
  } catch {
    throw new Error(invalid);
  }
  const size = 2 ** (32 - prefixLength);
  if (network % size !== 0) {
    throw new Error(`${field}: Invalid value: "${cidr}": must be a network address (host bits zero)`);
  }
  return { network, prefixLength };
}

/**
 * The cluster's pod range and the size of each node's share of it, as kube-controller-manager's
 * `--cluster-cidr` and `--node-cidr-mask-size` give them.
 */
export interface NodeCidrPlan {
  /** The range every node's pod CIDR is carved from (the `--pod-cidr` flag). */
  readonly podCidr: string;
  /** Prefix length of each node's pod CIDR (the `--node-cidr-mask-size` flag). */
  readonly nodeCidrMaskSize: number;
}

/** A node's pod CIDR must hold its gateway and at least one pod, as {@link PodIpAllocator} needs. */
const longestNodeCidrMask = 30;

/**
 * How many node pod CIDRs the plan holds. Throws, naming the flag, when `--pod-cidr` is not an
 * IPv4 network or `--node-cidr-mask-size` is shorter than the range's prefix or too long to hold a
 * pod.
 */
export function nodeCidrCapacity(plan: NodeCidrPlan): number {
  const { prefixLength } = parseIpv4Cidr(plan.podCidr, '--pod-cidr');
  const mask = plan.nodeCidrMaskSize;
  if (!Number.isInteger(mask) || mask > longestNodeCidrMask) {
    throw new Error(
      `--node-cidr-mask-size: Invalid value: ${mask}: must be an integer from ${prefixLength} to ${longestNodeCidrMask} (a node's pod CIDR holds a gateway and at least one pod)`,
    );
  }
  if (mask < prefixLength) {
    throw new Error(
      `--node-cidr-mask-size: Invalid value: ${mask}: must be greater than or equal to the prefix length of --pod-cidr ${plan.podCidr} (${prefixLength})`,
    );
  }
  return 2 ** (mask - prefixLength);
}

/**
 * The pod CIDR of node `index`: the `index`-th subnet of `nodeCidrMaskSize` bits in `podCidr`,
 * counted from the start of the range, as kube-controller-manager's range allocator hands them out
 * to nodes joining an empty cluster.
 */
export function nodeCidrOf(plan: NodeCidrPlan, index: number): string {
  const capacity = nodeCidrCapacity(plan);
  if (!Number.isInteger(index) || index < 0 || index >= capacity) {
    throw new RangeError(
      `node index: Invalid value: ${index}: --pod-cidr ${plan.podCidr} holds ${capacity} node pod CIDRs of /${plan.nodeCidrMaskSize} (indexes 0 to ${capacity - 1})`,
    );
  }
  const { network } = parseIpv4Cidr(plan.podCidr, '--pod-cidr');
  return `${numberToIpv4(network + index * 2 ** (32 - plan.nodeCidrMaskSize))}/${plan.nodeCidrMaskSize}`;
}

/** The first and last address of an IPv4 CIDR, as 32-bit values. */
export function ipv4CidrBounds(cidr: string, field = 'podCIDR'): { first: number; last: number } {
  const { network, prefixLength } = parseIpv4Cidr(cidr, field);
  return { first: network, last: network + 2 ** (32 - prefixLength) - 1 };
}

/**
 * Pod IP allocation within one node's podCIDR, in the manner of the host-local CNI plugin: the
 * network address, the gateway (`.1`, which the node answers on every pod veth) and the broadcast
 * address are never handed out, and the search continues after the last address given, so an IP
 * just released is the last to be reused (connections to a dead pod's IP then can't reach a new pod
 * by accident). A pod key holds at most one IP; allocating again for the same key returns it.
 */
export class PodIpAllocator {
  readonly cidr: string;
  readonly #first: number;
  readonly #last: number;
  readonly #byKey = new Map<string, number>();
  readonly #byIp = new Map<number, string>();
  #cursor: number;

  constructor(cidr: string) {
    const { network, prefixLength } = parseIpv4Cidr(cidr);
    if (prefixLength > 30) {
      throw new Error(`podCIDR: Invalid value: "${cidr}": must be /30 or larger to hold a gateway and a pod`);
    }
    this.cidr = cidr;
    this.#first = network + 2;
    this.#last = network + 2 ** (32 - prefixLength) - 2;
    this.#cursor = this.#last;
  }

  /** How many pod IPs the CIDR can hold in total. */
  get capacity(): number {
    return this.#last - this.#first + 1;
  }

  /** How many IPs are held. */
  get used(): number {
    return this.#byKey.size;
  }

  /** The IP held by `key`, if any. */
  lookup(key: string): string | undefined {
    const held = this.#byKey.get(key);
    return held === undefined ? undefined : numberToIpv4(held);
  }

  /** Who holds `ip`, if anyone. */
  holder(ip: string): string | undefined {
    return this.#byIp.get(ipv4ToNumber(ip));
  }

  /**
   * Records that `key` holds `ip` (rebuilding state from pods that already have an IP). Throws if
   * the address is outside the range or held by another pod; idempotent for the same holder.
   */
  claim(key: string, ip: string): void {
    const value = ipv4ToNumber(ip);
    if (value < this.#first || value > this.#last) {
      throw new Error(
        `status.podIP: Invalid value: "${ip}": not an assignable address of podCIDR ${this.cidr}`,
      );
    }
    const holder = this.#byIp.get(value);
    if (holder !== undefined && holder !== key) {
      throw new Error(`status.podIP: Invalid value: "${ip}": address already in use by pod ${holder}`);
    }
    const previous = this.#byKey.get(key);
    if (previous !== undefined && previous !== value) {
      throw new Error(`pod ${key} already holds ${numberToIpv4(previous)}, cannot also hold ${ip}`);
    }
    this.#byKey.set(key, value);
    this.#byIp.set(value, key);
  }

  /** Gives `key` an IP (its current one if it already holds one). Throws when the range is full. */
  allocate(key: string): string {
    const held = this.#byKey.get(key);
    if (held !== undefined) return numberToIpv4(held);
    const size = this.capacity;
    for (let step = 1; step <= size; step++) {
      const candidate = this.#first + ((this.#cursor - this.#first + step) % size);
      if (!this.#byIp.has(candidate)) {
        this.#cursor = candidate;
        this.#byKey.set(key, candidate);
        this.#byIp.set(candidate, key);
        return numberToIpv4(candidate);
      }
    }
    throw new Error(`failed to allocate a pod IP for ${key}: range is full (podCIDR ${this.cidr})`);
  }

  /** Frees the IP held by `key`; releasing a key that holds nothing is a no-op. */
  release(key: string): void {
    const held = this.#byKey.get(key);
    if (held === undefined) return;
    this.#byKey.delete(key);
    this.#byIp.delete(held);
  }
}
