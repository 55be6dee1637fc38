/**
 * The IPVS proxier's I/O shell: puts every service address on the dummy interface, swaps the
 * ipsets in with `ipset restore`, writes the few iptables rules IPVS mode needs, and brings the
 * kernel's virtual and real servers to the rendered ones with one `ipvsadm --restore` per sync.
 * Real servers that leave are drained (weight 0) and deleted by a timer once their connections are
 * gone or the drain timeout passed. Every command goes through a {@link CommandRunner}, so the
 * commands are tested with a recording runner on kernels without IPVS.
 */
import { type CommandResult, type CommandRunner, commandRunner } from '../iptables/proxier.ts';
import type { Proxier, RenderedRuleset, SyncScope } from '../proxier.ts';
import { ipFamilyOf, joinHostPort } from '../state/ip.ts';
import type { DesiredState, IPFamily, NodeInfo, ServiceProtocol } from '../state/types.ts';
import type { ConnectionCounts } from './graceful.ts';
import {
  DEFAULT_IPVS_RENDER_OPTIONS,
  DUMMY_INTERFACE,
  IPVS_CHAINS,
  IPVS_JUMP_RULES,
  type IpvsRenderOptions,
  type IpvsRuleset,
  ipsetNames,
  type KernelVirtualServer,
  planIpvs,
  renderIpvsRules,
  serviceSpec,
  type VirtualServer,
  virtualServerKey,
} from './render.ts';

/** A rendered IPVS sync: always the whole desired state, which `apply` diffs against the kernel. */
export interface IpvsAgentRuleset extends RenderedRuleset {
  readonly mode: 'ipvs';
  readonly rules: IpvsRuleset;
}

/** Failure of a command the IPVS proxier ran, with its stderr. */
export class IpvsCommandError extends Error {
  readonly result: CommandResult;

  constructor(command: string, result: CommandResult) {
    super(`${command} exited with ${result.code}: ${result.stderr.trim()}`);
    this.name = 'IpvsCommandError';
    this.result = result;
  }
}

/** Options of an {@link IpvsProxier}. */
export interface IpvsProxierOptions {
  readonly family: IPFamily;
  readonly run?: CommandRunner;
  readonly render?: IpvsRenderOptions;
  /** Longest a leaving TCP real server is drained before it is deleted anyway (upstream: 15 min is too long for tests). */
  readonly drainTimeoutMs?: number;
  /** How often draining real servers are checked between syncs. */
  readonly drainCheckMs?: number;
  readonly now?: () => number;
  /** Receives failures of the drain timer, which has no caller to reject to. */
  readonly onDrainError?: (error: unknown) => void;
  /**
   * Receives warnings that must not fail a sync: an unsupported scheduler annotation (the Service
   * gets the default scheduler), once per Service and value, not once per sync.
   */
  readonly onWarning?: (message: string, fields: Readonly<Record<string, string>>) => void;
}

/** The kernel's virtual servers and connection counts, from `ipvsadm -Ln`. */
export interface IpvsListing {
  readonly servers: Map<string, KernelVirtualServer>;
  readonly connections: Map<string, Map<string, ConnectionCounts>>;
}

const PROTOCOLS: Record<string, ServiceProtocol> = { TCP: 'TCP', UDP: 'UDP', SCTP: 'SCTP' };

/** `10.0.0.1:80` or `[fd00::1]:80` → address and port. */
function splitHostPort(text: string): { address: string; port: number } {
  const colon = text.lastIndexOf(':');
  return { address: text.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(text.slice(colon + 1)) };
}

/** Parses `ipvsadm -Ln` output, keeping the virtual servers of `family`. */
export function parseIpvsList(output: string, family: IPFamily): IpvsListing {
  const servers = new Map<string, KernelVirtualServer>();
  const connections = new Map<string, Map<string, ConnectionCounts>>();
  let currentKey: string | null = null;
  for (const line of output.split('\n')) {
    const service = /^(TCP|UDP|SCTP)\s+(\S+)\s+(\S+)(?:\s+persistent\s+(\d+))?/.exec(line);
    if (service !== null) {
      const { address, port } = splitHostPort(service[2]!);
      if (ipFamilyOf(address) !== family) {
        currentKey = null;
        continue;
      }
      const server: KernelVirtualServer = {
        protocol: PROTOCOLS[service[1]!]!,
        address,
        port,
        scheduler: service[3]!,
        persistenceSeconds: service[4] === undefined ? null : Number(service[4]),
        realServers: new Map(),
      };
      currentKey = virtualServerKey(server);
      servers.set(currentKey, server);
      connections.set(currentKey, new Map());
      continue;
    }
    const real = /^\s+->\s+(\S+)\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)/.exec(line);
    if (real === null || currentKey === null) continue;
    const { address, port } = splitHostPort(real[1]!);
    const realServer = joinHostPort(address, port);
    (servers.get(currentKey)!.realServers as Map<string, number>).set(realServer, Number(real[2]));
    connections.get(currentKey)!.set(realServer, { active: Number(real[3]), inactive: Number(real[4]) });
  }
  return { servers, connections };
}

/** The IPVS proxier of one family. */
export class IpvsProxier implements Proxier<IpvsAgentRuleset> {
  readonly mode = 'ipvs';
  readonly family: IPFamily;
  readonly #run: CommandRunner;
  readonly #options: IpvsRenderOptions;
  readonly #drainTimeoutMs: number;
  readonly #drainCheckMs: number;
  readonly #now: () => number;
  readonly #onDrainError: (error: unknown) => void;
  readonly #onWarning: (message: string, fields: Readonly<Record<string, string>>) => void;
  readonly #iptables: string;
  /** Scheduler errors already reported, by Service key. */
  #reportedSchedulerErrors: ReadonlyMap<string, string> = new Map();
  #draining: ReadonlyMap<string, ReadonlyMap<string, number>> = new Map();
  #lastServers: readonly VirtualServer[] = [];
  #drainTimer: NodeJS.Timeout | undefined;
  /** IPVS changes one at a time: a drain check never interleaves with a sync. */
  #ipvsQueue: Promise<void> = Promise.resolve();

  constructor(options: IpvsProxierOptions) {
    this.family = options.family;
    this.#run = options.run ?? commandRunner();
    this.#options = options.render ?? DEFAULT_IPVS_RENDER_OPTIONS;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 15 * 60_000;
    this.#drainCheckMs = options.drainCheckMs ?? 1_000;
    this.#now = options.now ?? Date.now;
    this.#onDrainError = options.onDrainError ?? (() => undefined);
    this.#onWarning = options.onWarning ?? (() => undefined);
    this.#iptables = options.family === 'IPv4' ? 'iptables' : 'ip6tables';
  }

  /** Pure: the whole desired state (IPVS has no partial render; `apply` diffs against the kernel). */
  render(desired: DesiredState, node: NodeInfo, _scope: SyncScope): IpvsAgentRuleset {
    if (desired.family !== this.family)
      throw new Error(`${this.family} proxier given ${desired.family} state`);
    const rules = renderIpvsRules(desired, node, this.#options);
    return {
      mode: 'ipvs',
      family: this.family,
      full: true,
      ownedObjects: new Set(rules.virtualServers.map(virtualServerKey)),
      rules,
    };
  }

  /**
   * Addresses first (IPVS only sees packets to local addresses), then ipsets before the iptables
   * rules that match on them, then the virtual servers.
   */
  async apply(ruleset: IpvsAgentRuleset): Promise<void> {
    const { rules } = ruleset;
    this.#reportSchedulerErrors(rules.schedulerErrors);
    await this.#ensureDummyAddresses(rules.dummyAddresses);
    await this.#check('ipset', ['restore'], rules.ipsetRestore);
    await this.#check(`${this.#iptables}-restore`, ['-w', '--noflush'], rules.iptablesRestore);
    for (const jump of rules.jumps) {
      const spec = ['-w', '-t', jump.table];
      const present = await this.#run(this.#iptables, [...spec, '-C', jump.chain, ...jump.args]);
      if (present.code !== 0) await this.#check(this.#iptables, [...spec, '-I', jump.chain, ...jump.args]);
    }
    this.#lastServers = rules.virtualServers;
    await this.#queueIpvsSync();
  }

  /** Virtual servers of this family in the kernel now. */
  async existingObjects(): Promise<Set<string>> {
    return new Set((await this.#list()).servers.keys());
  }

  /** True when the dummy interface or the nat entry chain is gone. */
  async lostState(): Promise<boolean> {
    const link = await this.#run('ip', ['link', 'show', DUMMY_INTERFACE]);
    if (link.code !== 0) return true;
    const chain = await this.#run(this.#iptables, ['-w', '-t', 'nat', '-S', 'PORTICO-SERVICES']);
    return chain.code !== 0;
  }

  /**
   * Deletes the virtual servers on Portico's addresses, the jumps, chains and ipsets, and the dummy
   * interface. Virtual servers on other addresses belong to someone else and stay.
   */
  async cleanup(): Promise<void> {
    clearTimeout(this.#drainTimer);
    const addresses = new Set((await this.#dummyAddresses()).map((cidr) => cidr.split('/')[0]!));
    const listing = await this.#list();
    const deletions = [...listing.servers.values()]
      .filter((server) => addresses.has(server.address))
      .map((server) => `-D ${serviceSpec(server)}`);
    if (deletions.length > 0) await this.#check('ipvsadm', ['--restore'], `${deletions.join('\n')}\n`);
    for (const jump of IPVS_JUMP_RULES) {
      const spec = ['-w', '-t', jump.table, '-D', jump.chain, ...jump.args];
      // A jump inserted twice (e.g. by two agents) needs two deletes; a missing one fails at once.
      let deleted = true;
      while (deleted) deleted = (await this.#run(this.#iptables, spec)).code === 0;
    }
    // Declaring a chain in a restore flushes it (creating it if missing), so -X always succeeds.
    const table = (name: 'filter' | 'nat') => [
      `*${name}`,
      ...IPVS_CHAINS[name].map((chain) => `:${chain} - [0:0]`),
      ...IPVS_CHAINS[name].map((chain) => `-X ${chain}`),
      'COMMIT',
    ];
    await this.#check(
      `${this.#iptables}-restore`,
      ['-w', '--noflush'],
      `${[...table('filter'), ...table('nat')].join('\n')}\n`,
    );
    const present = new Set((await this.#check('ipset', ['list', '-n'])).split('\n'));
    const ours = Object.values(ipsetNames(this.family)).flatMap((name) => [name, `${name}-T`]);
    const destroys = ours.filter((name) => present.has(name)).map((name) => `destroy ${name}`);
    if (destroys.length > 0) await this.#check('ipset', ['restore'], `${destroys.join('\n')}\n`);
    const link = await this.#run('ip', ['link', 'show', DUMMY_INTERFACE]);
    if (link.code !== 0) return;
    const removals = await this.#dummyAddresses();
    if (removals.length > 0)
      await this.#check(
        'ip',
        ['-batch', '-'],
        `${removals.map((cidr) => `address del ${cidr} dev ${DUMMY_INTERFACE}`).join('\n')}\n`,
      );
    // The interface is shared by both families: the last family's cleanup removes it.
    if ((await this.#dummyAddresses('all')).length === 0)
      await this.#check('ip', ['link', 'delete', DUMMY_INTERFACE]);
  }

  /** Stops the drain timer (the agent is going away; draining resumes with the next agent). */
  stop(): void {
    clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
  }

  #reportSchedulerErrors(errors: ReadonlyMap<string, string>): void {
    for (const [service, error] of errors)
      if (this.#reportedSchedulerErrors.get(service) !== error)
        this.#onWarning('unsupported IPVS scheduler; using the default', {
          service,
          error,
          scheduler: this.#options.defaultScheduler,
        });
    // Forgetting fixed Services makes a later relapse worth a new warning.
    this.#reportedSchedulerErrors = errors;
  }

  async #ensureDummyAddresses(wanted: readonly string[]): Promise<void> {
    const link = await this.#run('ip', ['link', 'show', DUMMY_INTERFACE]);
    if (link.code !== 0) await this.#check('ip', ['link', 'add', DUMMY_INTERFACE, 'type', 'dummy']);
    const current = new Set(await this.#dummyAddresses());
    const wantedSet = new Set(wanted);
    const batch = [
      ...wanted
        .filter((cidr) => !current.has(cidr))
        .map((cidr) => `address add ${cidr} dev ${DUMMY_INTERFACE}`),
      ...[...current]
        .filter((cidr) => !wantedSet.has(cidr))
        .map((cidr) => `address del ${cidr} dev ${DUMMY_INTERFACE}`),
    ];
    if (batch.length > 0) await this.#check('ip', ['-batch', '-'], `${batch.join('\n')}\n`);
  }

  /** Addresses on the dummy interface, of this family unless `all`. */
  async #dummyAddresses(scope: 'family' | 'all' = 'family'): Promise<string[]> {
    const familyFlag = scope === 'all' ? [] : [this.family === 'IPv4' ? '-4' : '-6'];
    const result = await this.#run('ip', ['-o', ...familyFlag, 'address', 'show', 'dev', DUMMY_INTERFACE]);
    if (result.code !== 0) return [];
    return [...result.stdout.matchAll(/\binet6? (\S+)/g)].map((match) => match[1]!);
  }

  async #list(): Promise<IpvsListing> {
    return parseIpvsList(await this.#check('ipvsadm', ['-Ln']), this.family);
  }

  /** Runs one IPVS sync after any in flight; the returned promise carries this sync's failure. */
  #queueIpvsSync(): Promise<void> {
    const next = this.#ipvsQueue.then(() => this.#syncIpvs());
    this.#ipvsQueue = next.catch(() => undefined);
    return next;
  }

  async #syncIpvs(): Promise<void> {
    clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
    const listing = await this.#list();
    const plan = planIpvs(this.#lastServers, {
      current: listing.servers,
      draining: this.#draining,
      connections: listing.connections,
      now: this.#now(),
      drainTimeoutMs: this.#drainTimeoutMs,
    });
    if (plan.commands.length > 0)
      await this.#check('ipvsadm', ['--restore'], `${plan.commands.join('\n')}\n`);
    this.#draining = plan.draining;
    if (plan.draining.size === 0) return;
    this.#drainTimer = setTimeout(() => {
      this.#queueIpvsSync().catch(this.#onDrainError);
    }, this.#drainCheckMs);
    // Draining must not keep a stopping agent alive.
    this.#drainTimer.unref();
  }

  async #check(command: string, args: readonly string[], input?: string): Promise<string> {
    const result = await this.#run(command, args, input);
    if (result.code !== 0) throw new IpvsCommandError(`${command} ${args.join(' ')}`, result);
    return result.stdout;
  }
}
