/**
 * A test aid kept beside the renderer: an in-memory model of nftables tables that accepts the
 * `nft -f` statements {@link ./render.ts} emits with the kernel's transaction rules (all or
 * nothing; deleting a missing or referenced object fails; a rule may only name existing chains
 * and sets), and a packet tracer that walks a new connection through the hooks by priority.
 *
 * It returns the iptables tracer's {@link TraceOutcome}, so one scenario table asserts the same
 * outcome in both modes. It understands exactly the rule shapes the renderer emits and throws on
 * anything else. Both ways of every `numgen` match are explored, so the answer is the set of backends a
 * connection can reach with the probability of each; `recentLists` of the packet name the
 * affinity sets that already hold its source, and `recentSet` the sets it was added to.
 */

import {
  initialPacketState,
  isLocal,
  outcome,
  type PacketState,
  splitHostPort,
  type TraceOutcome,
  type TracePacket,
} from '../iptables/trace.ts';
import { cidrContains, ipFamilyOf } from '../state/ip.ts';

type Verdict = 'accept' | 'drop' | 'reject';

type Value =
  | { readonly kind: 'set'; readonly name: string }
  | { readonly kind: 'anonymous'; readonly items: readonly string[] }
  | { readonly kind: 'address'; readonly cidr: string };

type Match =
  | { readonly kind: 'ct-new' }
  /** `ct status dnat`: the connection was translated (by an earlier hook). */
  | { readonly kind: 'ct-dnat' }
  /** `ip saddr . ip daddr @set`. */
  | { readonly kind: 'address-pair'; readonly set: string }
  | {
      readonly kind: 'address';
      readonly which: 'saddr' | 'daddr';
      readonly negate: boolean;
      readonly value: Value;
    }
  | { readonly kind: 'fib-local'; readonly which: 'saddr' | 'daddr' }
  | { readonly kind: 'protocol'; readonly protocol: string }
  | { readonly kind: 'dport'; readonly port: number }
  | { readonly kind: 'mark-clear'; readonly mask: number }
  /** `numgen random mod N == 0`: true with probability 1/N; the tracer follows both ways. */
  | { readonly kind: 'numgen'; readonly modulus: number };

type Action =
  | { readonly kind: 'continue' }
  | { readonly kind: 'verdict'; readonly verdict: Verdict | 'return' }
  | { readonly kind: 'jump' | 'goto'; readonly chain: string }
  | { readonly kind: 'vmap'; readonly tuple: 'address' | 'port'; readonly map: string }
  | { readonly kind: 'dnat'; readonly to: string }
  /**
   * `dnat ip addr . port to ip daddr . meta l4proto . th dport . numgen random mod N map @M`:
   * slot `numgen` of the destination's entry in M; the tracer follows every slot.
   */
  | { readonly kind: 'dnat-slot'; readonly map: string; readonly modulus: number }
  | { readonly kind: 'masquerade' };

/** One parsed rule. */
interface Rule {
  readonly text: string;
  readonly matches: readonly Match[];
  /** Mark changes and set updates, done when the matches hold. */
  readonly markXor: number | null;
  readonly markOr: number | null;
  readonly update: string | null;
  readonly action: Action;
}

interface BaseChainSpec {
  readonly type: string;
  readonly hook: string;
  readonly priority: number;
}

interface NftSet {
  readonly isMap: boolean;
  readonly spec: string;
  /** key → verdict text (maps) or null (sets). */
  readonly elements: Map<string, string | null>;
}

interface NftTable {
  readonly chains: Map<string, Rule[]>;
  readonly baseChains: Map<string, BaseChainSpec>;
  readonly sets: Map<string, NftSet>;
}

const PRIORITY_BASES: Record<string, number> = { dstnat: -100, filter: 0, srcnat: 100 };

function parsePriority(text: string): number {
  if (/^-?\d+$/.test(text.trim())) return Number(text);
  const found = /^(\w+)(?: ([+-]) (\d+))?$/.exec(text.trim());
  if (found === null || PRIORITY_BASES[found[1]!] === undefined)
    throw new Error(`unsupported priority ${text}`);
  const offset = found[3] === undefined ? 0 : Number(found[3]) * (found[2] === '-' ? -1 : 1);
  return PRIORITY_BASES[found[1]!]! + offset;
}

function tokenize(text: string): string[] {
  return [...text.matchAll(/\{[^}]*\}|\S+/g)].map((found) => found[0]);
}

function braceItems(token: string): string[] {
  return token
    .slice(1, -1)
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function parseValue(token: string): Value {
  if (token.startsWith('@')) return { kind: 'set', name: token.slice(1) };
  if (token.startsWith('{')) return { kind: 'anonymous', items: braceItems(token) };
  const family = ipFamilyOf(token.split('/')[0]!);
  if (family === null) throw new Error(`not an address: ${token}`);
  return { kind: 'address', cidr: token.includes('/') ? token : `${token}/${family === 'IPv4' ? 32 : 128}` };
}

/** Parses a rule body (after `add rule FAMILY TABLE CHAIN`). */
export function parseRule(text: string): Rule {
  const words = tokenize(text);
  const matches: Match[] = [];
  let markXor: number | null = null;
  let markOr: number | null = null;
  let update: string | null = null;
  let action: Action = { kind: 'continue' };
  let i = 0;
  const fail = (): never => {
    throw new Error(`unsupported rule shape: ${text}`);
  };
  const expect = (...expected: string[]) => {
    for (const word of expected) if (words[i++] !== word) fail();
  };
  const take = () => words[i++] ?? fail();
  while (i < words.length) {
    const word = take();
    if (word === 'ct') {
      const what = take();
      if (what === 'state') {
        expect('new');
        matches.push({ kind: 'ct-new' });
      } else if (what === 'status') {
        expect('dnat');
        matches.push({ kind: 'ct-dnat' });
      } else fail();
    } else if (word === 'ip' || word === 'ip6') {
      const which = take();
      if (which !== 'saddr' && which !== 'daddr') fail();
      if (words[i] === '.' && words[i + 1] === word) {
        expect('.', word, 'daddr');
        const set = take();
        if (which !== 'saddr' || !set.startsWith('@')) fail();
        matches.push({ kind: 'address-pair', set: set.slice(1) });
      } else if (words[i] === '.') {
        expect('.', 'meta', 'l4proto', '.', 'th', 'dport', 'vmap');
        const map = take();
        if (which !== 'daddr' || !map.startsWith('@')) fail();
        action = { kind: 'vmap', tuple: 'address', map: map.slice(1) };
      } else {
        const negate = words[i] === '!=';
        if (negate) i++;
        matches.push({
          kind: 'address',
          which: which as 'saddr' | 'daddr',
          negate,
          value: parseValue(take()),
        });
      }
    } else if (word === 'fib') {
      const which = take();
      if (which !== 'saddr' && which !== 'daddr') fail();
      expect('type', 'local');
      matches.push({ kind: 'fib-local', which: which as 'saddr' | 'daddr' });
    } else if (word === 'tcp' || word === 'udp' || word === 'sctp') {
      expect('dport');
      matches.push({ kind: 'protocol', protocol: word }, { kind: 'dport', port: Number(take()) });
    } else if (word === 'meta') {
      const what = take();
      if (what === 'l4proto') {
        if (words[i] === '.') {
          expect('.', 'th', 'dport', 'vmap');
          const map = take();
          if (!map.startsWith('@')) fail();
          action = { kind: 'vmap', tuple: 'port', map: map.slice(1) };
        } else matches.push({ kind: 'protocol', protocol: take() });
      } else if (what === 'mark') {
        if (words[i] === '&') {
          expect('&');
          const mask = Number(take());
          expect('==', '0');
          matches.push({ kind: 'mark-clear', mask });
        } else {
          expect('set', 'meta', 'mark');
          const operator = take();
          const value = Number(take());
          if (operator === '^') markXor = value;
          else if (operator === '|') markOr = value;
          else fail();
        }
      } else fail();
    } else if (word === 'numgen') {
      expect('random', 'mod');
      const modulus = Number(take());
      expect('==', '0');
      if (!Number.isInteger(modulus) || modulus < 2) fail();
      matches.push({ kind: 'numgen', modulus });
    } else if (word === 'update') {
      const set = take();
      const element = take();
      if (!set.startsWith('@') || !/^\{ ip6? saddr \}$/.test(element)) fail();
      update = set.slice(1);
    } else if (word === 'dnat' && words[i] === 'to') {
      expect('to');
      action = { kind: 'dnat', to: take() };
    } else if (word === 'dnat') {
      const family = take();
      if (family !== 'ip' && family !== 'ip6') fail();
      expect('addr', '.', 'port', 'to', family, 'daddr', '.', 'meta', 'l4proto', '.', 'th', 'dport', '.');
      expect('numgen', 'random', 'mod');
      const modulus = Number(take());
      expect('map');
      const map = take();
      if (!Number.isInteger(modulus) || modulus < 1 || !map.startsWith('@')) fail();
      action = { kind: 'dnat-slot', map: map.slice(1), modulus };
    } else if (word === 'masquerade') {
      expect('fully-random');
      action = { kind: 'masquerade' };
    } else if (word === 'jump' || word === 'goto') {
      action = { kind: word, chain: take() };
    } else if (word === 'return' || word === 'drop' || word === 'reject' || word === 'accept') {
      action = { kind: 'verdict', verdict: word };
    } else fail();
    if (action.kind !== 'continue' && i < words.length) fail();
  }
  return { text, matches, markXor, markOr, update, action };
}

function cloneTables(tables: Map<string, NftTable>): Map<string, NftTable> {
  const copy = new Map<string, NftTable>();
  for (const [name, table] of tables)
    copy.set(name, {
      chains: new Map([...table.chains].map(([chain, rules]) => [chain, [...rules]])),
      baseChains: new Map(table.baseChains),
      sets: new Map(
        [...table.sets].map(([set, value]) => [set, { ...value, elements: new Map(value.elements) }]),
      ),
    });
  return copy;
}

/** Chains and sets a table's rules and map values refer to. */
function references(table: NftTable): { chains: Set<string>; sets: Set<string> } {
  const chains = new Set<string>();
  const sets = new Set<string>();
  for (const rules of table.chains.values())
    for (const rule of rules) {
      if (rule.action.kind === 'jump' || rule.action.kind === 'goto') chains.add(rule.action.chain);
      if (rule.action.kind === 'vmap' || rule.action.kind === 'dnat-slot') sets.add(rule.action.map);
      if (rule.update !== null) sets.add(rule.update);
      for (const match of rule.matches) {
        if (match.kind === 'address' && match.value.kind === 'set') sets.add(match.value.name);
        if (match.kind === 'address-pair') sets.add(match.set);
      }
    }
  for (const set of table.sets.values())
    for (const value of set.elements.values()) {
      const found = value === null ? null : /^(?:goto|jump) (\S+)$/.exec(value);
      if (found !== null) chains.add(found[1]!);
    }
  return { chains, sets };
}

/** In-memory nftables: tables keyed `family name` (`ip portico`). */
export class SimulatedNftables {
  #tables = new Map<string, NftTable>();

  /** Table keys, sorted. */
  tables(): string[] {
    return [...this.#tables.keys()].sort();
  }

  /** Chain names of a table, sorted. */
  chains(table: string): string[] {
    return [...this.#table(this.#tables, table).chains.keys()].sort();
  }

  /** Rule texts of a chain. */
  rules(table: string, chain: string): string[] {
    const rules = this.#table(this.#tables, table).chains.get(chain);
    if (rules === undefined) throw new Error(`no chain ${chain} in ${table}`);
    return rules.map((rule) => rule.text);
  }

  /** Set or map names of a table, sorted. */
  sets(table: string): string[] {
    return [...this.#table(this.#tables, table).sets.keys()].sort();
  }

  /** Elements of a set (`key`) or map (`key : value`), sorted. */
  elements(table: string, set: string): string[] {
    const found = this.#table(this.#tables, table).sets.get(set);
    if (found === undefined) throw new Error(`no set ${set} in ${table}`);
    return [...found.elements].map(([key, value]) => (value === null ? key : `${key} : ${value}`)).sort();
  }

  /** Applies an `nft -f` script as one transaction: on any error nothing changes and the error is thrown. */
  apply(script: string): void {
    const working = cloneTables(this.#tables);
    for (const rawLine of script.split('\n')) {
      const line = rawLine.trim();
      if (line === '' || line.startsWith('#')) continue;
      this.#statement(working, line);
    }
    for (const [name, table] of working) {
      const { chains, sets } = references(table);
      for (const chain of chains)
        if (!table.chains.has(chain)) throw new Error(`${name}: reference to missing chain ${chain}`);
      for (const set of sets)
        if (!table.sets.has(set)) throw new Error(`${name}: reference to missing set ${set}`);
    }
    this.#tables = working;
  }

  /** Base chains of one hook across every table, by priority. */
  baseChains(hook: string): { table: string; chain: string; type: string }[] {
    const found: { table: string; chain: string; type: string; priority: number }[] = [];
    for (const [table, value] of this.#tables)
      for (const [chain, spec] of value.baseChains)
        if (spec.hook === hook) found.push({ table, chain, type: spec.type, priority: spec.priority });
    return found.sort((a, b) => a.priority - b.priority);
  }

  /** Parsed rules of a chain (for the tracer). */
  parsedRules(table: string, chain: string): readonly Rule[] {
    const rules = this.#table(this.#tables, table).chains.get(chain);
    if (rules === undefined) throw new Error(`no chain ${chain} in ${table}`);
    return rules;
  }

  /** A set's elements (for the tracer). */
  setElements(table: string, set: string): ReadonlyMap<string, string | null> {
    const found = this.#table(this.#tables, table).sets.get(set);
    if (found === undefined) throw new Error(`no set ${set} in ${table}`);
    return found.elements;
  }

  #table(tables: Map<string, NftTable>, name: string): NftTable {
    const table = tables.get(name);
    if (table === undefined) throw new Error(`no table ${name}`);
    return table;
  }

  #statement(tables: Map<string, NftTable>, line: string): void {
    const head = /^(add|flush|delete) (table|chain|rule|set|map|element) (ip6?) (\S+)(?: (.*))?$/.exec(line);
    if (head === null) throw new Error(`unsupported statement: ${line}`);
    const [, verb, object, family, tableName, rest = ''] = head;
    const key = `${family} ${tableName}`;
    if (object === 'table') {
      if (verb === 'add') {
        if (!tables.has(key)) tables.set(key, { chains: new Map(), baseChains: new Map(), sets: new Map() });
      } else if (verb === 'delete') {
        if (!tables.delete(key)) throw new Error(`delete of missing table ${key}`);
      } else throw new Error(`unsupported statement: ${line}`);
      return;
    }
    const table = this.#table(tables, key);
    const name = rest.split(' ')[0]!;
    const body = rest.slice(name.length).trim();
    switch (`${verb} ${object}`) {
      case 'add chain': {
        if (!table.chains.has(name)) table.chains.set(name, []);
        const base = /^\{ type (\w+) hook (\w+) priority ([^;]+) ; \}$/.exec(body);
        if (base !== null)
          table.baseChains.set(name, { type: base[1]!, hook: base[2]!, priority: parsePriority(base[3]!) });
        else if (body !== '') throw new Error(`unsupported chain spec: ${line}`);
        return;
      }
      case 'flush chain':
        if (!table.chains.has(name)) throw new Error(`flush of missing chain ${name}`);
        table.chains.set(name, []);
        return;
      case 'delete chain': {
        if (!table.chains.has(name)) throw new Error(`delete of missing chain ${name}`);
        if ((table.chains.get(name) ?? []).length > 0) throw new Error(`delete of non-empty chain ${name}`);
        table.chains.delete(name);
        table.baseChains.delete(name);
        if (references(table).chains.has(name)) throw new Error(`delete of referenced chain ${name}`);
        return;
      }
      case 'add rule': {
        const rules = table.chains.get(name);
        if (rules === undefined) throw new Error(`rule for missing chain ${name}`);
        rules.push(parseRule(body));
        return;
      }
      case 'add set':
      case 'add map': {
        const existing = table.sets.get(name);
        if (existing === undefined)
          table.sets.set(name, { isMap: object === 'map', spec: body, elements: new Map() });
        else if (existing.spec !== body) throw new Error(`set ${name} exists with other properties`);
        return;
      }
      case 'flush set':
      case 'flush map': {
        const set = table.sets.get(name);
        if (set === undefined) throw new Error(`flush of missing set ${name}`);
        set.elements.clear();
        return;
      }
      case 'delete set':
      case 'delete map':
        if (!table.sets.has(name)) throw new Error(`delete of missing set ${name}`);
        table.sets.delete(name);
        if (references(table).sets.has(name)) throw new Error(`delete of referenced set ${name}`);
        return;
      case 'add element':
      case 'delete element': {
        const set = table.sets.get(name);
        if (set === undefined) throw new Error(`element of missing set ${name}`);
        for (const item of braceItems(body)) {
          const separator = item.indexOf(' : ');
          const elementKey = separator < 0 ? item : item.slice(0, separator);
          const value = separator < 0 ? null : item.slice(separator + 3);
          if (verb === 'delete') {
            if (!set.elements.delete(elementKey))
              throw new Error(`delete of missing element ${elementKey} in ${name}`);
            continue;
          }
          if (set.isMap !== (value !== null)) throw new Error(`element ${item} does not fit ${name}`);
          const existing = set.elements.get(elementKey);
          if (existing !== undefined && existing !== value)
            throw new Error(`element ${elementKey} in ${name} exists with another value`);
          set.elements.set(elementKey, value);
        }
        return;
      }
      default:
        throw new Error(`unsupported statement: ${line}`);
    }
  }
}

/** Loads scripts (a full sync, then partial ones) into a fresh simulated kernel. */
export function simulateNftables(...scripts: readonly string[]): SimulatedNftables {
  const nft = new SimulatedNftables();
  for (const script of scripts) nft.apply(script);
  return nft;
}

type Result = Verdict | 'dnat' | 'masquerade' | null;

interface Branch {
  readonly probability: number;
  readonly state: PacketState;
  /** null: fell off the chain or returned. */
  readonly result: Result;
}

function valueContains(
  nft: SimulatedNftables,
  table: string,
  value: Value,
  address: string,
  packet: TracePacket,
) {
  switch (value.kind) {
    case 'address':
      return cidrContains(value.cidr, address);
    case 'anonymous':
      return value.items.some((item) =>
        item.includes('/') ? cidrContains(item, address) : item === address,
      );
    case 'set':
      // Affinity sets hold what earlier connections recorded; the packet says which ones hold its source.
      if (value.name.startsWith('affinity-')) return (packet.recentLists ?? []).includes(value.name);
      return nft.setElements(table, value.name).has(address);
  }
}

function matches(
  nft: SimulatedNftables,
  table: string,
  match: Match,
  packet: TracePacket,
  state: PacketState,
) {
  switch (match.kind) {
    case 'ct-new':
      return true;
    case 'ct-dnat':
      return state.dnat !== null;
    case 'address-pair':
      return nft.setElements(table, match.set).has(`${packet.source} . ${state.destination}`);
    case 'address': {
      const address = match.which === 'saddr' ? packet.source : state.destination;
      return valueContains(nft, table, match.value, address, packet) !== match.negate;
    }
    case 'fib-local':
      return isLocal(match.which === 'saddr' ? packet.source : state.destination, packet);
    case 'protocol':
      return match.protocol === packet.protocol;
    case 'dport':
      return match.port === state.port;
    case 'mark-clear':
      return (state.mark & match.mask) === 0;
    case 'numgen':
      return true;
  }
}

function walkChain(
  nft: SimulatedNftables,
  table: string,
  chain: string,
  packet: TracePacket,
  state: PacketState,
  depth: number,
): Branch[] {
  if (depth > 16) throw new Error(`jump loop through ${chain}`);
  const rules = nft.parsedRules(table, chain);
  const enter = (
    target: string,
    kind: 'jump' | 'goto',
    index: number,
    current: PacketState,
    probability: number,
  ) => {
    const branches: Branch[] = [];
    for (const branch of walkChain(nft, table, target, packet, current, depth + 1)) {
      const scaled = probability * branch.probability;
      if (branch.result !== null || kind === 'goto') branches.push({ ...branch, probability: scaled });
      else branches.push(...walkFrom(index + 1, branch.state, scaled));
    }
    return branches;
  };
  const verdictOf = (text: string, index: number, current: PacketState, probability: number): Branch[] => {
    const found = /^(goto|jump) (\S+)$/.exec(text);
    if (found !== null) return enter(found[2]!, found[1] as 'jump' | 'goto', index, current, probability);
    if (text === 'drop' || text === 'accept') return [{ probability, state: current, result: text }];
    throw new Error(`unsupported verdict ${text}`);
  };
  const walkFrom = (index: number, current: PacketState, probability: number): Branch[] => {
    for (let i = index; i < rules.length; i++) {
      const rule = rules[i]!;
      if (!rule.matches.every((match) => matches(nft, table, match, packet, current))) continue;
      const numgen = rule.matches.find((match) => match.kind === 'numgen');
      if (numgen !== undefined && numgen.kind === 'numgen') {
        const taken = 1 / numgen.modulus;
        const certain = { ...rule, matches: rule.matches.filter((match) => match !== numgen) };
        return [
          ...applyRule(certain, i, current, probability * taken),
          ...walkFrom(i + 1, current, probability * (1 - taken)),
        ];
      }
      return applyRule(rule, i, current, probability);
    }
    return [{ probability, state: current, result: null }];
  };
  const applyRule = (rule: Rule, i: number, current: PacketState, probability: number): Branch[] => {
    const next = { ...current, recentSet: [...current.recentSet] };
    if (rule.markXor !== null) next.mark ^= rule.markXor;
    if (rule.markOr !== null) next.mark |= rule.markOr;
    if (rule.update !== null) next.recentSet.push(rule.update);
    const action = rule.action;
    switch (action.kind) {
      case 'continue':
        return walkFrom(i + 1, next, probability);
      case 'verdict':
        return [{ probability, state: next, result: action.verdict === 'return' ? null : action.verdict }];
      case 'jump':
      case 'goto':
        return enter(action.chain, action.kind, i, next, probability);
      case 'vmap': {
        const key =
          action.tuple === 'address'
            ? `${next.destination} . ${packet.protocol} . ${next.port}`
            : `${packet.protocol} . ${next.port}`;
        const value = nft.setElements(table, action.map).get(key);
        if (value === undefined || value === null) return walkFrom(i + 1, next, probability);
        return verdictOf(value, i, next, probability);
      }
      case 'dnat': {
        const { address, port } = splitHostPort(action.to);
        next.dnat = action.to;
        next.destination = address;
        next.port = port;
        return [{ probability, state: next, result: 'dnat' }];
      }
      case 'dnat-slot': {
        const slots = nft.setElements(table, action.map);
        const branches: Branch[] = [];
        for (let slot = 0; slot < action.modulus; slot++) {
          const target = slots.get(`${next.destination} . ${packet.protocol} . ${next.port} . ${slot}`);
          const share = probability / action.modulus;
          // A slot without an element makes the kernel skip the rule, as any failed lookup does.
          if (target === undefined || target === null) {
            branches.push(...walkFrom(i + 1, next, share));
            continue;
          }
          const [address, port] = target.split(' . ') as [string, string];
          branches.push({
            probability: share,
            state: {
              ...next,
              dnat: `${address.includes(':') ? `[${address}]` : address}:${port}`,
              destination: address,
              port: Number(port),
            },
            result: 'dnat',
          });
        }
        return branches;
      }
      case 'masquerade':
        next.masquerade = true;
        return [{ probability, state: next, result: 'masquerade' }];
    }
  };
  return walkFrom(0, state, 1);
}

interface HookResult {
  readonly probability: number;
  readonly state: PacketState;
  readonly verdict: 'ACCEPT' | 'DROP' | 'REJECT';
}

/** Runs every base chain of a hook in priority order; a drop or reject in any of them ends the packet. */
function walkHook(
  nft: SimulatedNftables,
  hook: string,
  packet: TracePacket,
  state: PacketState,
): HookResult[] {
  let live: { probability: number; state: PacketState }[] = [{ probability: 1, state }];
  const finished: HookResult[] = [];
  for (const base of nft.baseChains(hook)) {
    const next: { probability: number; state: PacketState }[] = [];
    for (const item of live) {
      // A NAT chain sees only the first packet and is skipped once an earlier one translated it.
      if (base.type === 'nat' && item.state.dnat !== null && hook !== 'postrouting') {
        next.push(item);
        continue;
      }
      for (const branch of walkChain(nft, base.table, base.chain, packet, item.state, 0)) {
        const probability = item.probability * branch.probability;
        if (branch.result === 'drop' || branch.result === 'reject')
          finished.push({
            probability,
            state: branch.state,
            verdict: branch.result === 'drop' ? 'DROP' : 'REJECT',
          });
        else next.push({ probability, state: branch.state });
      }
    }
    live = next;
  }
  return [...finished, ...live.map((item) => ({ ...item, verdict: 'ACCEPT' as const }))];
}

/**
 * Every way a new connection's first packet can traverse the tables: prerouting (or output for
 * host traffic), then input when the translated destination is local or forward otherwise, then
 * postrouting for packets that leave.
 */
export function traceNftablesPacket(nft: SimulatedNftables, packet: TracePacket): TraceOutcome[] {
  const initial = initialPacketState(packet);
  const outcomes: TraceOutcome[] = [];
  const first = packet.fromHost === true ? 'output' : 'prerouting';
  for (const afterFirst of walkHook(nft, first, packet, initial)) {
    if (afterFirst.verdict !== 'ACCEPT') {
      outcomes.push(outcome(afterFirst.probability, afterFirst.verdict, afterFirst.state));
      continue;
    }
    const delivered = packet.fromHost !== true && isLocal(afterFirst.state.destination, packet);
    const middle =
      packet.fromHost === true
        ? [afterFirst]
        : walkHook(nft, delivered ? 'input' : 'forward', packet, afterFirst.state).map((item) => ({
            ...item,
            probability: item.probability * afterFirst.probability,
          }));
    for (const afterMiddle of middle) {
      if (afterMiddle.verdict !== 'ACCEPT' || delivered) {
        outcomes.push(outcome(afterMiddle.probability, afterMiddle.verdict, afterMiddle.state));
        continue;
      }
      for (const afterPost of walkHook(nft, 'postrouting', packet, afterMiddle.state))
        outcomes.push(
          outcome(afterMiddle.probability * afterPost.probability, afterPost.verdict, afterPost.state),
        );
    }
  }
  return outcomes;
}
