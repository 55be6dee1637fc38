/**
 * The nftables proxier's I/O shell: applies rendered scripts with `nft -f -` (one transaction
 * each), reads back what Portico owns at start-up, and deletes Portico's table on cleanup. Other
 * tables are never touched: netfilter runs every table's base chains, ordered by priority, so
 * Portico needs no jumps inside anyone else's table.
 */

import { type CommandResult, type CommandRunner, commandRunner } from '../iptables/proxier.ts';
import type { Proxier, SyncScope } from '../proxier.ts';
import type { DesiredState, IPFamily, NodeInfo } from '../state/types.ts';
import {
  isAffinitySet,
  isServiceChain,
  SERVICE_IPS_MAP,
  SERVICES_CHAIN,
  TABLE_NAME,
  tableFamily,
} from './names.ts';
import {
  DEFAULT_NFTABLES_RENDER_OPTIONS,
  type NftablesRenderOptions,
  type NftablesRuleset,
  ownedChainKey,
  ownedSetKey,
  renderNftablesRules,
} from './render.ts';

/** Failure of an nft command, with its stderr (which quotes the offending statement). */
export class NftCommandError extends Error {
  readonly result: CommandResult;

  constructor(command: string, result: CommandResult) {
    super(`${command} exited with ${result.code}: ${result.stderr.trim()}`);
    this.name = 'NftCommandError';
    this.result = result;
  }
}

/** Options of an {@link NftablesProxier}. */
export interface NftablesProxierOptions {
  readonly family: IPFamily;
  readonly run?: CommandRunner;
  readonly render?: NftablesRenderOptions;
}

/**
 * The `chain` or `set` objects of one table in `nft -j list` output; output without an `nftables`
 * array yields none.
 */
function objectsOfTable(json: string, kind: 'chain' | 'set', table: string): object[] {
  const parsed: unknown = JSON.parse(json);
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    !('nftables' in parsed) ||
    !Array.isArray(parsed.nftables)
  )
    return [];
  const objects: object[] = [];
  for (const entry of parsed.nftables as unknown[]) {
    if (typeof entry !== 'object' || entry === null || !(kind in entry)) continue;
    const value: unknown = (entry as Record<string, unknown>)[kind];
    if (typeof value === 'object' && value !== null && 'table' in value && value.table === table)
      objects.push(value);
  }
  return objects;
}

/** Keys of the per-service chains and affinity sets among a table's chain and set objects. */
function ownedObjectKeys(chains: readonly object[], sets: readonly object[]): Set<string> {
  const owned = new Set<string>();
  for (const chain of chains)
    if ('name' in chain && typeof chain.name === 'string' && isServiceChain(chain.name))
      owned.add(ownedChainKey(chain.name));
  for (const set of sets) {
    if (!('name' in set) || typeof set.name !== 'string' || !isAffinitySet(set.name)) continue;
    const timeout = 'timeout' in set && typeof set.timeout === 'number' ? set.timeout : 0;
    owned.add(ownedSetKey(set.name, timeout));
  }
  return owned;
}

/** The nftables proxier of one family: table `ip portico` or `ip6 portico`. */
export class NftablesProxier implements Proxier<NftablesRuleset> {
  readonly mode = 'nftables';
  readonly family: IPFamily;
  readonly #run: CommandRunner;
  readonly #options: NftablesRenderOptions;
  readonly #table: string;

  constructor(options: NftablesProxierOptions) {
    this.family = options.family;
    this.#run = options.run ?? commandRunner();
    this.#options = options.render ?? DEFAULT_NFTABLES_RENDER_OPTIONS;
    this.#table = `${tableFamily(options.family)} ${TABLE_NAME}`;
  }

  /** Pure: see {@link renderNftablesRules}. */
  render(desired: DesiredState, node: NodeInfo, scope: SyncScope): NftablesRuleset {
    if (desired.family !== this.family)
      throw new Error(`${this.family} proxier given ${desired.family} state`);
    return renderNftablesRules(desired, node, scope, this.#options);
  }

  /** One `nft -f -` transaction; nothing is applied when the kernel refuses any statement. */
  async apply(ruleset: NftablesRuleset): Promise<void> {
    if (ruleset.script === '') return;
    await this.#check(['-f', '-'], ruleset.script);
  }

  /**
   * Per-service chains and affinity sets in the kernel now (map elements are not read: a full sync
   * flushes the maps). Use it as `existingObjects` of the first sync and of a full sync after a
   * failed apply, when the previous ruleset's `ownedObjects` may not match the kernel.
   */
  async existingObjects(): Promise<Set<string>> {
    const [family, name] = this.#table.split(' ') as [string, string];
    const chains = await this.#run('nft', ['-j', 'list', 'chains', family]);
    if (chains.code !== 0) throw new NftCommandError('nft -j list chains', chains);
    const tableChains = objectsOfTable(chains.stdout, 'chain', name);
    const sets = await this.#run('nft', ['-j', '-t', 'list', 'sets', family]);
    if (sets.code !== 0) throw new NftCommandError('nft -j -t list sets', sets);
    return ownedObjectKeys(tableChains, objectsOfTable(sets.stdout, 'set', name));
  }

  /**
   * True when our table or its `services` chain is gone (`nft flush ruleset`, a deleted table), or
   * the chain lost its dispatch rule (`nft flush table` keeps chains but empties them).
   */
  async lostState(): Promise<boolean> {
    const [family, name] = this.#table.split(' ') as [string, string];
    const result = await this.#run('nft', ['list', 'chain', family, name, SERVICES_CHAIN]);
    return result.code !== 0 || !result.stdout.includes(`@${SERVICE_IPS_MAP}`);
  }

  /** Deletes Portico's table (with everything in it); other tables stay. A missing table is fine. */
  async cleanup(): Promise<void> {
    // add-then-delete in one transaction succeeds whether or not the table exists.
    await this.#check(['-f', '-'], `add table ${this.#table}\ndelete table ${this.#table}\n`);
  }

  async #check(args: readonly string[], input?: string): Promise<string> {
    const result = await this.#run('nft', args, input);
    if (result.code !== 0) throw new NftCommandError(`nft ${args.join(' ')}`, result);
    return result.stdout;
  }
}
