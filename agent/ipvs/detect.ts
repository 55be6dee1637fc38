/**
 * Whether this node's kernel can run the IPVS mode, and the mode the agent runs as a result. As
 * kube-proxy does, `--mode ipvs` on a kernel without IPVS falls back to iptables with one
 * log line, unless `--no-fallback` asks for an error instead.
 */
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import type { CommandRunner } from '../iptables/proxier.ts';
import { commandRunner } from '../iptables/proxier.ts';
import type { ProxyMode } from '../proxier.ts';

/** Result of {@link detectIpvsSupport}. */
export interface IpvsSupport {
  readonly supported: boolean;
  /** What the decision rests on, for the log line or the error. */
  readonly reason: string;
}

/** Where detection looks; tests point these elsewhere. */
export interface IpvsDetectionSources {
  /** Exists once the ip_vs module is loaded (or built in). */
  readonly procIpVs?: string;
  /** Names the kernel's built-in modules. */
  readonly modulesBuiltin?: string;
  /** Runs `modprobe -n ip_vs` (a dry run: it loads nothing). */
  readonly run?: CommandRunner;
}

async function readable(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Detects IPVS: loaded (`/proc/net/ip_vs`), built in (`modules.builtin`), or loadable
 * (`modprobe -n ip_vs` succeeds). Only the first is certain to work without loading anything;
 * the agent's start-up loads the module when the others say it can.
 */
export async function detectIpvsSupport(sources: IpvsDetectionSources = {}): Promise<IpvsSupport> {
  const procIpVs = sources.procIpVs ?? '/proc/net/ip_vs';
  if ((await readable(procIpVs)) !== null) return { supported: true, reason: `${procIpVs} exists` };
  const builtinPath = sources.modulesBuiltin ?? `/lib/modules/${release()}/modules.builtin`;
  const builtin = await readable(builtinPath);
  if (builtin !== null && /(^|\/)ip_vs\.ko$/m.test(builtin))
    return { supported: true, reason: `ip_vs is built into the kernel (${builtinPath})` };
  const run = sources.run ?? commandRunner();
  let probe: string;
  try {
    const result = await run('modprobe', ['-n', 'ip_vs']);
    if (result.code === 0) return { supported: true, reason: 'modprobe -n ip_vs found a loadable module' };
    probe = result.stderr.trim() || `modprobe -n ip_vs exited with ${result.code}`;
  } catch (error) {
    probe = `modprobe could not run: ${error instanceof Error ? error.message : String(error)}`;
  }
  return { supported: false, reason: `${procIpVs} does not exist, ip_vs is not built in, and ${probe}` };
}

/** Options of {@link resolveProxyMode}. */
export interface ResolveProxyModeOptions {
  /** `--no-fallback`: fail instead of falling back to iptables. */
  readonly noFallback: boolean;
  /** Receives the one fallback line (the agent passes its logger's `warn`). */
  readonly log: (message: string) => void;
  /** Detection; defaults to {@link detectIpvsSupport} on this node. */
  readonly detect?: () => Promise<IpvsSupport>;
}

/** The proxy mode to run for the requested one; only `ipvs` can change. */
export async function resolveProxyMode(
  requested: ProxyMode,
  options: ResolveProxyModeOptions,
): Promise<ProxyMode> {
  if (requested !== 'ipvs') return requested;
  const support = await (options.detect ?? detectIpvsSupport)();
  if (support.supported) return 'ipvs';
  if (options.noFallback)
    throw new Error(
      `--mode: Invalid value: "ipvs": the kernel does not support IPVS (${support.reason}); load the ip_vs module or choose "iptables" or "nftables" (--no-fallback is set, so no fallback to iptables)`,
    );
  options.log(
    `IPVS is not supported by this kernel (${support.reason}); falling back to the iptables proxy mode`,
  );
  return 'iptables';
}
