/**
 * Giving an IP back to a more preferred node, as MetalLB does when a node returns: pure
 * decisions, the Lease handover itself is in announcer.ts.
 *
 * Protocol (the per-IP Lease stays the only source of truth):
 * 1. The holder H sees, in its plan, a node P ahead of it in the IP's preference order, and P's
 *    announcer renewed its presence (presence.ts) after H took the IP and recently enough.
 * 2. H removes the address, then writes the Lease over to P (holder P, a new term, a fresh
 *    renewTime) with a compare-and-swap on the resourceVersion it read while holding it.
 * 3. P's elector, campaigning for the IP, reads a Lease naming it and renews it: it now leads and
 *    adds the address. The other candidates see a valid Lease held by P and keep waiting.
 *
 * Handing over rather than clearing the holder: a cleared Lease goes to whichever standby retries
 * first, not necessarily P. The address is gone before the write and P adds it only after reading
 * the write, so the IP is never on two nodes. "Renewed after H took the IP" is what stops
 * flapping: a node whose agent died just before H's takeover has not renewed since, so H keeps
 * the IP; once that agent is back its first renewal brings the IP home. If P nevertheless does
 * not take the Lease, it expires and the usual failover applies, and H does not offer the IP to
 * that run of P's agent again for {@link HANDOFF_BACKOFF_MS} (a restarted agent is a new
 * incarnation and may have it at once).
 */
import type { NodePresence } from './presence.ts';

/** After handing an IP to an agent incarnation, it is not offered to that one again for this long. */
export const HANDOFF_BACKOFF_MS = 30_000;

/** What {@link handoffTarget} decides from. */
export interface HandoffInput {
  /** The eligible nodes ahead of this one in the IP's preference order, best first. */
  readonly preferred: readonly string[];
  /** When this node took the IP (local clock). */
  readonly heldSinceMs: number;
  readonly nowMs: number;
  readonly presence: NodePresence;
  /** Incarnations this IP was recently handed to, with the time until which they are not offered it again. */
  readonly blockedUntilMs: ReadonlyMap<string, number>;
}

/** The node to hand the IP to: the best preferred node alive since the takeover; undefined to keep it. */
export function handoffTarget(input: HandoffInput): string | undefined {
  for (const node of input.preferred) {
    const seen = input.presence.lastSeen(node);
    if (seen === undefined || seen.atMs <= input.heldSinceMs) continue;
    if (input.nowMs - seen.atMs > input.presence.ttlMs) continue;
    if ((input.blockedUntilMs.get(seen.incarnation) ?? 0) > input.nowMs) continue;
    return node;
  }
  return undefined;
}
