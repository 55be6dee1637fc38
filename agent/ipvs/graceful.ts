/**
 * Graceful termination of IPVS real servers, as a pure state machine (upstream:
 * pkg/proxy/ipvs/graceful_termination.go). A TCP real server that leaves its virtual server is not
 * deleted at once: its weight drops to 0 so no new connection picks it, and it is deleted once its
 * connections have drained or a timeout passed. UDP and SCTP real servers have no connection end
 * to wait for and are deleted at once. An endpoint that comes back cancels the pending delete.
 */
import type { ServiceProtocol } from '../state/types.ts';

/** Active and inactive connection counts of a real server (`ipvsadm -Ln` ActiveConn/InActConn). */
export interface ConnectionCounts {
  readonly active: number;
  readonly inactive: number;
}

/** One change to a virtual server's real servers. */
export type RealServerOperation =
  | { readonly kind: 'add'; readonly realServer: string }
  | { readonly kind: 'restore-weight'; readonly realServer: string }
  | { readonly kind: 'drain'; readonly realServer: string }
  | { readonly kind: 'delete'; readonly realServer: string };

/** Input of {@link planRealServers}. */
export interface RealServerPlanInput {
  readonly protocol: ServiceProtocol;
  /** Real servers (`ip:port`) in the kernel, with their weight. */
  readonly current: ReadonlyMap<string, number>;
  /** Real servers that should serve. */
  readonly desired: ReadonlySet<string>;
  /** Real servers being drained, with the time (ms) draining began. */
  readonly draining: ReadonlyMap<string, number>;
  readonly now: number;
  /** Connection counts per real server; a server missing here counts as still busy. */
  readonly connections: ReadonlyMap<string, ConnectionCounts>;
  /** Longest a drain may take before the real server is deleted anyway. */
  readonly drainTimeoutMs: number;
}

/** Output of {@link planRealServers}: operations in order and the new draining state. */
export interface RealServerPlan {
  readonly operations: readonly RealServerOperation[];
  readonly draining: ReadonlyMap<string, number>;
}

/** Decides what happens to each real server of one virtual server in this sync. */
export function planRealServers(input: RealServerPlanInput): RealServerPlan {
  const operations: RealServerOperation[] = [];
  const draining = new Map<string, number>();
  for (const realServer of [...input.desired].sort()) {
    const weight = input.current.get(realServer);
    if (weight === undefined) operations.push({ kind: 'add', realServer });
    else if (weight === 0) operations.push({ kind: 'restore-weight', realServer });
  }
  const graceful = input.protocol === 'TCP';
  for (const realServer of [...input.current.keys()].sort()) {
    if (input.desired.has(realServer)) continue;
    if (!graceful) {
      operations.push({ kind: 'delete', realServer });
      continue;
    }
    const since = input.draining.get(realServer);
    if (since === undefined) {
      operations.push({ kind: 'drain', realServer });
      draining.set(realServer, input.now);
      continue;
    }
    const counts = input.connections.get(realServer);
    const drained = counts !== undefined && counts.active + counts.inactive === 0;
    if (drained || input.now - since >= input.drainTimeoutMs) operations.push({ kind: 'delete', realServer });
    else draining.set(realServer, since);
  }
  return { operations, draining };
}
