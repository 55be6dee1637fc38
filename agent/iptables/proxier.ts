/**
 * The iptables proxier's I/O shell: applies rendered rulesets with `iptables-restore --noflush`
 * (one transaction per table, both tables in one call), keeps the jumps from the built-in chains in
 * place, watches the canary chain and removes everything on cleanup.
 */
import { spawn } from 'node:child_process';
import type { Proxier, SyncScope } from '../proxier.ts';
import type { DesiredState, IPFamily, NodeInfo } from '../state/types.ts';
import { CANARY_CHAIN, isServiceChain } from './names.ts';
import {
  DEFAULT_IPTABLES_RENDER_OPTIONS,
  type IptablesRenderOptions,
  type IptablesRuleset,
  type IptablesTable,
  type JumpRule,
  renderIptablesRules,
  restoreInput,
} from './render.ts';

/** Result of one command. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command with optional stdin. Tests wrap it in `ip netns exec`. */
export type CommandRunner = (
  command: string,
  args: readonly string[],
  input?: string,
) => Promise<CommandResult>;

/** A {@link CommandRunner} on this host, or inside the named network namespace. */
export function commandRunner(networkNamespace: string | null = null): CommandRunner {
  return (command, args, input) =>
    new Promise((resolve, reject) => {
      const argv =
        networkNamespace === null
          ? [command, ...args]
          : ['ip', 'netns', 'exec', networkNamespace, command, ...args];
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      child.on('error', reject);
      child.on('close', (code) =>
        resolve({
          code: code ?? 1,
          stdout: Buffer.concat(stdout).toString(),
          stderr: Buffer.concat(stderr).toString(),
        }),
      );
      // A restore that fails early closes stdin; the exit code carries the error, not EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(input ?? '');
    });
}

/** Failure of an iptables command, with its stderr (which names the offending input line). */
export class IptablesCommandError extends Error {
  readonly result: CommandResult;

  constructor(command: string, result: CommandResult) {
    super(`${command} exited with ${result.code}: ${result.stderr.trim()}`);
    this.name = 'IptablesCommandError';
    this.result = result;
  }
}

/** What `iptables-save` of nat and filter shows of Portico. */
export interface SavedPorticoState {
  /** PORTICO- chains per table (`:NAME POLICY [p:b]` lines). */
  readonly chains: Record<IptablesTable, string[]>;
  /** Rules in built-in chains that jump to a PORTICO- chain, as printed (`-A PREROUTING …`). */
  readonly jumps: Record<IptablesTable, string[]>;
}

const BUILT_IN_CHAIN_NAMES = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

/** Reads Portico's chains and jumps from `iptables-save` output. */
export function parseSave(save: string): SavedPorticoState {
  const state: SavedPorticoState = { chains: { filter: [], nat: [] }, jumps: { filter: [], nat: [] } };
  let table: IptablesTable | null = null;
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      const name = line.slice(1).trim();
      table = name === 'filter' || name === 'nat' ? name : null;
    } else if (table !== null && line.startsWith(':PORTICO-')) {
      state.chains[table].push(line.slice(1).split(' ')[0]!);
    } else if (table !== null && line.startsWith('-A ') && / -j PORTICO-\S+$/.test(line)) {
      if (BUILT_IN_CHAIN_NAMES.has(line.split(' ')[1]!)) state.jumps[table].push(line);
    }
  }
  return state;
}

/** A jump rule as iptables-save prints it, and as iptables-restore reads it. */
function jumpText(jump: JumpRule): string {
  return `-A ${jump.chain} ${jump.args.map((word) => (word.includes(' ') ? `"${word}"` : word)).join(' ')}`;
}

/**
 * Restore input that removes Portico: the jumps from built-in chains (deleted by their exact
 * saved text, duplicates included), then every PORTICO- chain, flushed and deleted. Flushing all
 * first matters: a chain can be deleted only once nothing jumps to it.
 */
export function renderCleanup(saved: SavedPorticoState): string {
  let text = '';
  for (const table of ['filter', 'nat'] as const) {
    const names = [...saved.chains[table]].sort();
    const jumps = saved.jumps[table];
    if (names.length === 0 && jumps.length === 0) continue;
    text += `*${table}\n`;
    for (const chain of names) text += `:${chain} - [0:0]\n`;
    for (const jump of jumps) text += `-D ${jump.slice(3)}\n`;
    for (const chain of names) text += `-X ${chain}\n`;
    text += 'COMMIT\n';
  }
  return text;
}

/**
 * The restore input of a full sync: the ruleset plus, in the same transaction, an insert at the
 * top of each built-in chain for every jump that `saved` lacks. Doing this inside the restore
 * (instead of `iptables -C`/`-I` per jump) matters with the legacy backend, where every single
 * iptables command reads and rewrites the whole table.
 */
export function restoreInputWithJumps(ruleset: IptablesRuleset, saved: SavedPorticoState): string {
  const withJumps = (table: IptablesTable, text: string) => {
    const present = new Set(saved.jumps[table]);
    const missing = ruleset.jumps
      .filter((jump) => jump.table === table && !present.has(jumpText(jump)))
      .map((jump) => `-I ${jumpText(jump).slice(3).replace(' ', ' 1 ')}\n`);
    return text.slice(0, text.length - 'COMMIT\n'.length) + missing.join('') + 'COMMIT\n';
  };
  return withJumps('filter', ruleset.filter) + withJumps('nat', ruleset.nat);
}

/**
 * Which iptables binaries to run: the host's default (`iptables`, whatever alternative it points
 * to), or explicitly the nf_tables or the legacy (x_tables) variant. The rules must go where the
 * host's other rules are: packets traverse both, but `iptables -L` shows only one.
 */
export type IptablesBackend = 'default' | 'nft' | 'legacy';

/** Options of an {@link IptablesProxier}. */
export interface IptablesProxierOptions {
  readonly family: IPFamily;
  readonly backend?: IptablesBackend;
  readonly run?: CommandRunner;
  readonly render?: IptablesRenderOptions;
}

/** The iptables (IPv4) or ip6tables (IPv6) proxier of one family. */
export class IptablesProxier implements Proxier<IptablesRuleset> {
  readonly mode = 'iptables';
  readonly family: IPFamily;
  readonly #run: CommandRunner;
  readonly #options: IptablesRenderOptions;
  readonly #binary: string;

  constructor(options: IptablesProxierOptions) {
    this.family = options.family;
    this.#run = options.run ?? commandRunner();
    this.#options = options.render ?? DEFAULT_IPTABLES_RENDER_OPTIONS;
    const base = options.family === 'IPv4' ? 'iptables' : 'ip6tables';
    const backend = options.backend ?? 'default';
    this.#binary = backend === 'default' ? base : `${base}-${backend}`;
  }

  /** Pure: see {@link renderIptablesRules}. */
  render(desired: DesiredState, node: NodeInfo, scope: SyncScope): IptablesRuleset {
    if (desired.family !== this.family)
      throw new Error(`${this.family} proxier given ${desired.family} state`);
    return renderIptablesRules(desired, node, scope, this.#options);
  }

  /**
   * One `iptables-restore --noflush` with both tables; a full sync first reads the tables to add
   * the jumps from the built-in chains that are missing.
   */
  async apply(ruleset: IptablesRuleset): Promise<void> {
    const input = ruleset.full ? restoreInputWithJumps(ruleset, await this.#save()) : restoreInput(ruleset);
    await this.#check(`${this.#binary}-restore`, ['--noflush', '-w', '5'], input);
  }

  /** Per-service chains present in the kernel now, for the first sync's `existingObjects`. */
  async existingServiceChains(): Promise<Set<string>> {
    return new Set((await this.#save()).chains.nat.filter(isServiceChain));
  }

  /**
   * True when the canary chain is missing from nat or filter: someone flushed or deleted our
   * rules. Each check reads a whole table with the legacy backend, so call it about once per
   * sync period, as kube-proxy's monitor does, not before every partial sync.
   */
  async lostState(): Promise<boolean> {
    for (const table of ['nat', 'filter'] as const) {
      const result = await this.#run(this.#binary, ['-w', '5', '-t', table, '-S', CANARY_CHAIN]);
      if (result.code !== 0) return true;
    }
    return false;
  }

  /** Deletes the jumps from the built-in chains and every PORTICO- chain; foreign chains stay. */
  async cleanup(): Promise<void> {
    const input = renderCleanup(await this.#save());
    if (input !== '') await this.#check(`${this.#binary}-restore`, ['--noflush', '-w', '5'], input);
  }

  async #save(): Promise<SavedPorticoState> {
    const filter = await this.#check(`${this.#binary}-save`, ['-t', 'filter']);
    const nat = await this.#check(`${this.#binary}-save`, ['-t', 'nat']);
    return parseSave(filter + nat);
  }

  async #check(command: string, args: readonly string[], input?: string): Promise<string> {
    const result = await this.#run(command, args, input);
    if (result.code !== 0) throw new IptablesCommandError(`${command} ${args.join(' ')}`, result);
    return result.stdout;
  }
}
