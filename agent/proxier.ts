/**
 * The contract between the agent's sync loop and a proxy mode (iptables, nftables, IPVS). A mode
 * differs only in how it renders and applies: change tracking, endpoint categorisation and sync
 * pacing are shared.
 */
import type { DesiredState, NodeInfo } from './state/types.ts';

/** Proxy modes the agent's `--mode` flag accepts. */
export type ProxyMode = 'iptables' | 'nftables' | 'ipvs';

/** What a render rewrites, and what it may find in the kernel. */
export interface SyncScope {
  /**
   * `namespace/name` of the Services whose rules may have changed since the last successful sync
   * (a partial sync rewrites only theirs), or 'all' for a full sync.
   */
  readonly changedServices: ReadonlySet<string> | 'all';
  /**
   * Per-service objects (chains, sets) believed to be in the kernel: the previous ruleset's
   * `ownedObjects`, or what was read back from the kernel at start-up. Those no longer wanted are
   * deleted by the render.
   */
  readonly existingObjects: ReadonlySet<string>;
}

/** Common shape of a rendered ruleset; each mode adds its own payload. */
export interface RenderedRuleset {
  readonly mode: ProxyMode;
  readonly family: DesiredState['family'];
  /** True when the ruleset rewrites everything the mode owns; false for a partial sync. */
  readonly full: boolean;
  /** Per-service objects that exist once this ruleset is applied; the next render's `ownedObjects`. */
  readonly ownedObjects: ReadonlySet<string>;
}

/**
 * A proxy mode for one IP family. `render` is pure (same inputs, same text; no I/O), so it is
 * tested without a kernel; `apply` and `cleanup` are the only calls that touch the node.
 */
export interface Proxier<Ruleset extends RenderedRuleset> {
  readonly mode: ProxyMode;
  readonly family: DesiredState['family'];
  /** Renders the rules for `desired` within `scope`. */
  render(desired: DesiredState, node: NodeInfo, scope: SyncScope): Ruleset;
  /** Writes a rendered ruleset atomically; rejects when the kernel refused it (nothing applied). */
  apply(ruleset: Ruleset): Promise<void>;
  /**
   * True when the mode's objects were removed behind its back (e.g. a flushed table), so the next
   * sync must be full.
   */
  lostState(): Promise<boolean>;
  /** Removes everything the mode ever wrote, and nothing else. */
  cleanup(): Promise<void>;
}
