/**
 * Which UDP conntrack entries a sync leaves stale, as `conntrack -D` argument lists. Computed from
 * two desired states, so the agent deletes exactly those entries and never flushes the table (the
 * kube-proxy complaint: a restart that drops every UDP flow on the node).
 *
 * UDP needs this because it has no connection end: an entry created while a Service rejected
 * traffic, or one pointing at a deleted pod, keeps matching the client's next datagrams for as
 * long as they keep coming, bypassing the new rules.
 */
import type { DesiredState, EndpointState, ServicePortState } from './types.ts';

/** One `conntrack` invocation's arguments (the binary name is left to the caller). */
export type ConntrackDeletion = readonly string[];

function serving(port: ServicePortState): EndpointState[] {
  return port.endpoints.filter((endpoint) => endpoint.ready || endpoint.serving);
}

function key(port: ServicePortState): string {
  return `${port.name}/${port.protocol}`;
}

/**
 * Deletions needed after moving from `previous` to `next` (same family):
 * - a UDP port that had no serving endpoint and now has one: entries to each of its addresses
 *   (cluster IP, external IPs, LB IPs, node port) created while it was rejected;
 * - a serving endpoint that went away: entries to each of those addresses answered by it.
 * Entries are matched on the original destination, so other Services' flows are left alone.
 */
export function staleUdpConntrackEntries(previous: DesiredState, next: DesiredState): ConntrackDeletion[] {
  const family = next.family === 'IPv4' ? 'ipv4' : 'ipv6';
  const before = new Map<string, ServicePortState>();
  for (const port of previous.servicePorts) if (port.protocol === 'UDP') before.set(key(port), port);
  const deletions: ConntrackDeletion[] = [];
  const byDestination = (port: ServicePortState, extra: readonly string[]) => {
    for (const ip of [port.clusterIP, ...port.externalIPs, ...port.loadBalancerIPs])
      deletions.push([
        '-D',
        '-f',
        family,
        '-p',
        'udp',
        '--orig-dst',
        ip,
        '--orig-port-dst',
        String(port.port),
        ...extra,
      ]);
    if (port.nodePort !== 0)
      deletions.push(['-D', '-f', family, '-p', 'udp', '--orig-port-dst', String(port.nodePort), ...extra]);
  };

  for (const port of next.servicePorts) {
    if (port.protocol !== 'UDP') continue;
    const old = before.get(key(port));
    const nowServing = serving(port);
    const wasServing = old === undefined ? [] : serving(old);
    if (wasServing.length === 0 && nowServing.length > 0) byDestination(port, []);
    const still = new Set(nowServing.map((endpoint) => endpoint.hostPort));
    for (const endpoint of wasServing) {
      if (still.has(endpoint.hostPort)) continue;
      byDestination(old!, ['--reply-src', endpoint.ip, '--reply-port-src', String(endpoint.port)]);
    }
  }
  // Ports that disappeared altogether: their endpoints' entries are stale too.
  const remaining = new Set(next.servicePorts.map(key));
  for (const [name, old] of before) {
    if (remaining.has(name)) continue;
    for (const endpoint of serving(old))
      byDestination(old, ['--reply-src', endpoint.ip, '--reply-port-src', String(endpoint.port)]);
  }
  return deletions;
}
