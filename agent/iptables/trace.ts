/**
 * A test aid kept beside the renderer: an in-memory model of the nat and filter tables that
 * accepts `iptables-restore --noflush` input with the kernel's rules for chains (declaring flushes,
 * `-X` of a referenced or unknown chain fails, a jump to a missing chain fails, `-D` of a missing
 * rule fails), and a packet
 * tracer that walks a new connection through it.
 *
 * It understands exactly the rule shapes {@link ./render.ts} emits and throws on anything else,
 * so a renderer change that the tracer cannot follow fails the tests instead of being ignored.
 * The tracer explores every branch of `-m statistic`, so its answer is the set of backends a
 * connection can reach and the probability of each.
 */
import { cidrContains, ipFamilyOf } from '../state/ip.ts';
import type { IptablesRuleset, IptablesTable, JumpRule } from './render.ts';

type Match =
  | { readonly kind: 'protocol'; readonly protocol: string }
  | { readonly kind: 'source' | 'destination'; readonly cidr: string; readonly negate: boolean }
  | { readonly kind: 'dport'; readonly port: number }
  | { readonly kind: 'addrtype'; readonly which: 'src' | 'dst'; readonly type: 'LOCAL' }
  | { readonly kind: 'statistic'; readonly probability: number }
  | { readonly kind: 'recent-check'; readonly name: string }
  | { readonly kind: 'recent-set'; readonly name: string }
  | { readonly kind: 'mark'; readonly negate: boolean; readonly value: number; readonly mask: number }
  | { readonly kind: 'ctstate'; readonly states: readonly string[] };

/** One parsed rule. */
export interface SimulatedRule {
  readonly text: string;
  readonly matches: readonly Match[];
  /** Chain or target name; null for a rule that only counts (comment-only rules). */
  readonly target: string | null;
  readonly toDestination: string | null;
  readonly orMark: number | null;
  readonly xorMark: number | null;
}

const BUILT_IN_CHAINS: Record<IptablesTable, readonly string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
};

const BUILT_IN_TARGETS = new Set(['ACCEPT', 'DROP', 'REJECT', 'RETURN', 'DNAT', 'MASQUERADE', 'MARK']);

/** Splits a rule line into words the way iptables-restore does (double quotes group). */
function tokenize(line: string): string[] {
  const words: string[] = [];
  const pattern = /"([^"]*)"|(\S+)/g;
  for (const found of line.matchAll(pattern)) words.push(found[1] ?? found[2]!);
  return words;
}

function parseMark(text: string): { value: number; mask: number } {
  const [value, mask] = text.split('/');
  return { value: Number(value), mask: mask === undefined ? 0xffffffff : Number(mask) };
}

/** Parses the words after `-A CHAIN`. */
export function parseRule(text: string, words: readonly string[]): SimulatedRule {
  const matches: Match[] = [];
  let target: string | null = null;
  let toDestination: string | null = null;
  let orMark: number | null = null;
  let xorMark: number | null = null;
  let negate = false;
  let i = 0;
  const next = () => {
    const word = words[++i];
    if (word === undefined) throw new Error(`rule ends early: ${text}`);
    return word;
  };
  for (; i < words.length; i++) {
    const word = words[i]!;
    switch (word) {
      case '!':
        negate = true;
        continue;
      case '-m': {
        const module = next();
        if (
          !['comment', 'tcp', 'udp', 'sctp', 'addrtype', 'statistic', 'recent', 'mark', 'conntrack'].includes(
            module,
          )
        )
          throw new Error(`unsupported match module ${module}: ${text}`);
        break;
      }
      case '--comment':
        next();
        break;
      case '-p':
        matches.push({ kind: 'protocol', protocol: next() });
        break;
      case '-s':
      case '-d': {
        const address = next();
        const cidr = address.includes('/')
          ? address
          : `${address}/${ipFamilyOf(address) === 'IPv6' ? 128 : 32}`;
        matches.push({ kind: word === '-s' ? 'source' : 'destination', cidr, negate });
        break;
      }
      case '--dport':
        matches.push({ kind: 'dport', port: Number(next()) });
        break;
      case '--dst-type':
      case '--src-type': {
        const type = next();
        if (type !== 'LOCAL' || negate) throw new Error(`unsupported addrtype match: ${text}`);
        matches.push({ kind: 'addrtype', which: word === '--src-type' ? 'src' : 'dst', type });
        break;
      }
      case '--mode':
        if (next() !== 'random') throw new Error(`unsupported statistic mode: ${text}`);
        break;
      case '--probability':
        matches.push({ kind: 'statistic', probability: Number(next()) });
        break;
      case '--name': {
        const name = next();
        const action = next();
        if (action === '--set') matches.push({ kind: 'recent-set', name });
        else if (action === '--rcheck') {
          matches.push({ kind: 'recent-check', name });
          if (next() !== '--seconds') throw new Error(`recent --rcheck without --seconds: ${text}`);
          next();
          if (next() !== '--reap') throw new Error(`recent --rcheck without --reap: ${text}`);
        } else throw new Error(`unsupported recent action ${action}: ${text}`);
        break;
      }
      case '--mark': {
        const mark = parseMark(next());
        matches.push({ kind: 'mark', negate, ...mark });
        break;
      }
      case '--ctstate':
        matches.push({ kind: 'ctstate', states: next().split(',') });
        break;
      case '-j':
        target = next();
        break;
      case '--to-destination':
        toDestination = next();
        break;
      case '--or-mark':
        orMark = Number(next());
        break;
      case '--xor-mark':
        xorMark = Number(next());
        break;
      case '--random-fully':
        break;
      default:
        throw new Error(`unsupported word ${JSON.stringify(word)} in rule: ${text}`);
    }
    negate = false;
  }
  return { text, matches, target, toDestination, orMark, xorMark };
}

/** An in-memory nat and filter table of one family. */
export class SimulatedIptables {
  readonly #tables: Record<IptablesTable, Map<string, SimulatedRule[]>> = {
    filter: new Map(),
    nat: new Map(),
  };

  constructor() {
    for (const table of ['filter', 'nat'] as const)
      for (const chain of BUILT_IN_CHAINS[table]) this.#tables[table].set(chain, []);
  }

  /** Chain names of a table, sorted. */
  chains(table: IptablesTable): string[] {
    return [...this.#tables[table].keys()].sort();
  }

  /** The rule texts of a chain (as given to restore, after `-A CHAIN`). */
  rules(table: IptablesTable, chain: string): string[] {
    const rules = this.#tables[table].get(chain);
    if (rules === undefined) throw new Error(`no chain ${chain} in ${table}`);
    return rules.map((rule) => rule.text);
  }

  /** Parsed rules of a chain; undefined when the chain does not exist. */
  parsedRules(table: IptablesTable, chain: string): readonly SimulatedRule[] | undefined {
    return this.#tables[table].get(chain);
  }

  /**
   * Applies `iptables-restore --noflush` input. Each table section is all-or-nothing, as in the
   * kernel: on an error the table keeps its previous content and the error is thrown.
   */
  restore(input: string): void {
    let table: IptablesTable | null = null;
    let working: Map<string, SimulatedRule[]> | null = null;
    for (const rawLine of input.split('\n')) {
      const line = rawLine.trim();
      if (line === '' || line.startsWith('#')) continue;
      if (line.startsWith('*')) {
        const name = line.slice(1);
        if (name !== 'filter' && name !== 'nat') throw new Error(`unsupported table ${name}`);
        table = name;
        working = new Map([...this.#tables[name]].map(([chain, rules]) => [chain, [...rules]]));
        continue;
      }
      if (table === null || working === null) throw new Error(`line outside a table: ${line}`);
      if (line === 'COMMIT') {
        this.#check(table, working);
        this.#tables[table] = working;
        table = null;
        working = null;
      } else if (line.startsWith(':')) {
        working.set(line.slice(1).split(' ')[0]!, []);
      } else {
        const words = tokenize(line);
        const chain = words[1]!;
        if (words[0] === '-A') {
          const rules = working.get(chain);
          if (rules === undefined) throw new Error(`${table}: -A to unknown chain ${chain}`);
          rules.push(parseRule(words.slice(2).join(' '), words.slice(2)));
        } else if (words[0] === '-I') {
          const rules = working.get(chain);
          const position = Number(words[2]);
          if (rules === undefined || !Number.isInteger(position) || position < 1)
            throw new Error(`${table}: bad insert: ${line}`);
          rules.splice(position - 1, 0, parseRule(words.slice(3).join(' '), words.slice(3)));
        } else if (words[0] === '-D') {
          const text = words.slice(2).join(' ');
          const rules = working.get(chain);
          const index = rules?.findIndex((rule) => rule.text === text) ?? -1;
          if (index < 0) throw new Error(`${table}: -D of a rule that does not exist: ${line}`);
          rules!.splice(index, 1);
        } else if (words[0] === '-X') {
          if (!working.has(chain)) throw new Error(`${table}: -X of unknown chain ${chain}`);
          working.delete(chain);
        } else throw new Error(`unsupported restore line: ${line}`);
      }
    }
    if (table !== null) throw new Error(`table ${table} not committed`);
  }

  /** Inserts the jump rules at the top of the built-in chains unless present (apply's `-C`/`-I`). */
  ensureJumps(jumps: readonly JumpRule[]): void {
    for (const jump of jumps) {
      const rules = this.#tables[jump.table].get(jump.chain)!;
      const text = jump.args.join(' ');
      if (!rules.some((rule) => rule.text === text)) rules.unshift(parseRule(text, [...jump.args]));
    }
  }

  /** Removes the given jump rules from the built-in chains. */
  removeJumps(jumps: readonly JumpRule[]): void {
    for (const jump of jumps) {
      const text = jump.args.join(' ');
      const chain = this.#tables[jump.table].get(jump.chain)!;
      this.#tables[jump.table].set(
        jump.chain,
        chain.filter((rule) => rule.text !== text),
      );
    }
  }

  #check(table: IptablesTable, chains: Map<string, SimulatedRule[]>): void {
    for (const [chain, rules] of chains)
      for (const rule of rules) {
        if (rule.target !== null && !BUILT_IN_TARGETS.has(rule.target) && !chains.has(rule.target))
          throw new Error(`${table}: ${chain} jumps to missing chain ${rule.target}`);
      }
    for (const builtIn of BUILT_IN_CHAINS[table])
      if (!chains.has(builtIn)) throw new Error(`${table}: built-in chain ${builtIn} deleted`);
  }
}

/** Loads a full ruleset (restore input plus jumps) into a fresh simulated kernel. */
export function simulate(ruleset: IptablesRuleset): SimulatedIptables {
  const iptables = new SimulatedIptables();
  iptables.restore(ruleset.filter + ruleset.nat);
  iptables.ensureJumps(ruleset.jumps);
  return iptables;
}

/** A new connection's first packet. */
export interface TracePacket {
  readonly source: string;
  readonly destination: string;
  readonly protocol: 'tcp' | 'udp' | 'sctp';
  readonly port: number;
  /**
   * The packet originates on this node (a host process): it traverses nat OUTPUT and filter
   * OUTPUT instead of PREROUTING and INPUT/FORWARD.
   */
  readonly fromHost?: boolean;
  /** Addresses of this node (`-m addrtype LOCAL`); loopback is always local. */
  readonly localAddresses: readonly string[];
  /** `-m recent` lists that already hold the source address (a returning affinity client). */
  readonly recentLists?: readonly string[];
}

/** One way the packet can go, with its probability. */
export interface TraceOutcome {
  readonly probability: number;
  readonly verdict: 'ACCEPT' | 'DROP' | 'REJECT';
  /** `ip:port` after DNAT (IPv6 bracketed), or null when the packet was not translated. */
  readonly dnat: string | null;
  /** SNAT by MASQUERADE in POSTROUTING. */
  readonly masquerade: boolean;
  /** `-m recent --set` lists the packet was recorded in. */
  readonly recentSet: readonly string[];
}

/**
 * What the rules have done to the packet so far; shared with the nftables tracer, whose verdicts
 * change the packet in the same ways.
 */
export interface PacketState {
  destination: string;
  port: number;
  mark: number;
  dnat: string | null;
  masquerade: boolean;
  recentSet: string[];
}

/** A packet as it arrives, before any rule has touched it. */
export function initialPacketState(packet: TracePacket): PacketState {
  return {
    destination: packet.destination,
    port: packet.port,
    mark: 0,
    dnat: null,
    masquerade: false,
    recentSet: [],
  };
}

interface Branch {
  readonly probability: number;
  readonly state: PacketState;
  /** null: fell off the chain or RETURNed; the caller continues after its jump. */
  readonly verdict: 'ACCEPT' | 'DROP' | 'REJECT' | null;
}

/** Whether an address belongs to this node as the packet sees it (its local addresses or loopback). */
export function isLocal(address: string, packet: TracePacket): boolean {
  return packet.localAddresses.includes(address) || cidrContains('127.0.0.0/8', address) || address === '::1';
}

function matches(match: Match, packet: TracePacket, state: PacketState): boolean {
  switch (match.kind) {
    case 'protocol':
      return match.protocol === packet.protocol;
    case 'source':
      return cidrContains(match.cidr, packet.source) !== match.negate;
    case 'destination':
      return cidrContains(match.cidr, state.destination) !== match.negate;
    case 'dport':
      return match.port === state.port;
    case 'addrtype':
      return isLocal(match.which === 'src' ? packet.source : state.destination, packet);
    case 'recent-check':
      return (packet.recentLists ?? []).includes(match.name);
    case 'mark':
      return ((state.mark & match.mask) === match.value) !== match.negate;
    case 'ctstate':
      // Every traced packet opens a new connection.
      return match.states.includes('NEW');
    case 'statistic':
    case 'recent-set':
      return true;
  }
}

/** Splits a DNAT target `address:port` (IPv6 as `[address]:port`) into its address and port. */
export function splitHostPort(hostPort: string): { address: string; port: number } {
  const colon = hostPort.lastIndexOf(':');
  const address = hostPort.slice(0, colon);
  return {
    address: address.startsWith('[') ? address.slice(1, -1) : address,
    port: Number(hostPort.slice(colon + 1)),
  };
}

function walkChain(
  iptables: SimulatedIptables,
  table: IptablesTable,
  chain: string,
  packet: TracePacket,
  state: PacketState,
  depth: number,
): Branch[] {
  if (depth > 16) throw new Error(`jump loop through ${chain}`);
  const rules = iptables.parsedRules(table, chain);
  if (rules === undefined) throw new Error(`no chain ${chain} in ${table}`);
  const walkFrom = (index: number, current: PacketState, probability: number): Branch[] => {
    for (let i = index; i < rules.length; i++) {
      const rule = rules[i]!;
      if (!rule.matches.every((match) => matches(match, packet, current))) continue;
      const statistic = rule.matches.find((match) => match.kind === 'statistic');
      if (statistic !== undefined && statistic.probability < 1) {
        const taken = applyRule(rule, i, current, probability * statistic.probability);
        return [...taken, ...walkFrom(i + 1, current, probability * (1 - statistic.probability))];
      }
      return applyRule(rule, i, current, probability);
    }
    return [{ probability, state: current, verdict: null }];
  };
  const applyRule = (
    rule: SimulatedRule,
    index: number,
    current: PacketState,
    probability: number,
  ): Branch[] => {
    const state = { ...current, recentSet: [...current.recentSet] };
    for (const match of rule.matches) if (match.kind === 'recent-set') state.recentSet.push(match.name);
    switch (rule.target) {
      case null:
        return walkFrom(index + 1, state, probability);
      case 'ACCEPT':
      case 'DROP':
      case 'REJECT':
        return [{ probability, state, verdict: rule.target }];
      case 'RETURN':
        return [{ probability, state, verdict: null }];
      case 'MARK':
        if (rule.orMark !== null) state.mark |= rule.orMark;
        if (rule.xorMark !== null) state.mark ^= rule.xorMark;
        return walkFrom(index + 1, state, probability);
      case 'DNAT': {
        const { address, port } = splitHostPort(rule.toDestination!);
        state.dnat = rule.toDestination;
        state.destination = address;
        state.port = port;
        return [{ probability, state, verdict: 'ACCEPT' }];
      }
      case 'MASQUERADE':
        state.masquerade = true;
        return [{ probability, state, verdict: 'ACCEPT' }];
      default: {
        // Sub-chain probabilities are relative to reaching this rule.
        const branches: Branch[] = [];
        for (const branch of walkChain(iptables, table, rule.target, packet, state, depth + 1)) {
          if (branch.verdict !== null)
            branches.push({ ...branch, probability: probability * branch.probability });
          else branches.push(...walkFrom(index + 1, branch.state, probability * branch.probability));
        }
        return branches;
      }
    }
  };
  return walkFrom(0, state, 1);
}

/** Walks a built-in chain; a chain falling off its end takes the ACCEPT policy. */
function walkBuiltIn(
  iptables: SimulatedIptables,
  table: IptablesTable,
  chain: string,
  packet: TracePacket,
  state: PacketState,
): { probability: number; state: PacketState; verdict: 'ACCEPT' | 'DROP' | 'REJECT' }[] {
  return walkChain(iptables, table, chain, packet, state, 0).map((branch) => ({
    probability: branch.probability,
    state: branch.state,
    verdict: branch.verdict ?? 'ACCEPT',
  }));
}

/**
 * Every way a new connection's first packet can traverse the tables: nat PREROUTING (or OUTPUT
 * for host traffic), filter INPUT when the (translated) destination is local, FORWARD otherwise
 * (OUTPUT for host traffic), then nat POSTROUTING for packets that leave.
 */
export function tracePacket(iptables: SimulatedIptables, packet: TracePacket): TraceOutcome[] {
  const initial = initialPacketState(packet);
  const outcomes: TraceOutcome[] = [];
  const natFirst = packet.fromHost === true ? 'OUTPUT' : 'PREROUTING';
  for (const afterNat of walkBuiltIn(iptables, 'nat', natFirst, packet, initial)) {
    const delivered = packet.fromHost !== true && isLocal(afterNat.state.destination, packet);
    const filterChain = packet.fromHost === true ? 'OUTPUT' : delivered ? 'INPUT' : 'FORWARD';
    for (const afterFilter of walkBuiltIn(iptables, 'filter', filterChain, packet, afterNat.state)) {
      const probability = afterNat.probability * afterFilter.probability;
      if (afterFilter.verdict !== 'ACCEPT' || delivered) {
        outcomes.push(outcome(probability, afterFilter.verdict, afterFilter.state));
        continue;
      }
      for (const afterPost of walkBuiltIn(iptables, 'nat', 'POSTROUTING', packet, afterFilter.state))
        outcomes.push(outcome(probability * afterPost.probability, afterPost.verdict, afterPost.state));
    }
  }
  return outcomes;
}

/** The outcome of a finished walk: the verdict and what the rules did to the packet. */
export function outcome(
  probability: number,
  verdict: TraceOutcome['verdict'],
  state: PacketState,
): TraceOutcome {
  return { probability, verdict, dnat: state.dnat, masquerade: state.masquerade, recentSet: state.recentSet };
}

/** Outcomes summed by backend: `ip:port` (or the verdict when not translated) → probability, rounded to 6 places. */
export function backendProbabilities(outcomes: readonly TraceOutcome[]): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const item of outcomes) {
    const key = item.verdict === 'ACCEPT' && item.dnat !== null ? item.dnat : item.verdict;
    sums[key] = (sums[key] ?? 0) + item.probability;
  }
  for (const key of Object.keys(sums)) sums[key] = Math.round(sums[key]! * 1e6) / 1e6;
  return sums;
}
