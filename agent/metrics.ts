/**
 * The agent's Prometheus series, named after kube-proxy's (`kubeproxy_sync_proxy_rules_*`) with
 * Portico's prefix so dashboards built for kube-proxy translate one to one.
 */
import type { Counter, Gauge, Histogram } from 'prom-client';
import {
  getOrCreateCounter,
  getOrCreateGauge,
  getOrCreateHistogram,
  METRIC_PREFIX,
} from '../controllers/runtime/metrics.ts';
import type { IPFamily } from './state/types.ts';

/** The annotation the EndpointSlice controller stamps with the time of the change it published. */
export const LAST_CHANGE_TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

/** Series one agent process updates. */
export interface AgentMetrics {
  /** Wall time of one sync, labelled `full` or `partial`. */
  readonly syncDuration: Histogram<'sync'>;
  /** Rules the last sync left in each table (`-A` lines of the restore input), per family. */
  readonly rules: Gauge<'table' | 'family'>;
  /** EndpointSlice adds, updates and deletes delivered to the agent. */
  readonly endpointChanges: Counter<never>;
  /** Service adds, updates and deletes delivered to the agent. */
  readonly serviceChanges: Counter<never>;
  /** From an EndpointSlice's trigger time to the rules for it being applied. */
  readonly networkProgrammingDuration: Histogram<never>;
  /** Syncs that failed (the kernel refused the rules, or a command could not run). */
  readonly syncFailures: Counter<never>;
  /** Unix time of the last successful sync. */
  readonly lastSyncTimestamp: Gauge<never>;
}

/** Creates (or returns the already registered) agent series on the shared registry. */
export function agentMetrics(): AgentMetrics {
  return {
    syncDuration: getOrCreateHistogram({
      name: `${METRIC_PREFIX}proxy_sync_proxy_rules_duration_seconds`,
      help: 'Time one sync of the proxy rules took, full or partial.',
      labelNames: ['sync'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    rules: getOrCreateGauge({
      name: `${METRIC_PREFIX}proxy_sync_proxy_rules_iptables_total`,
      help: 'Rules written by the last sync, per table and IP family (a partial sync counts only what it rewrote).',
      labelNames: ['table', 'family'],
    }),
    endpointChanges: getOrCreateCounter({
      name: `${METRIC_PREFIX}proxy_sync_proxy_rules_endpoint_changes_total`,
      help: 'EndpointSlice changes received.',
    }),
    serviceChanges: getOrCreateCounter({
      name: `${METRIC_PREFIX}proxy_sync_proxy_rules_service_changes_total`,
      help: 'Service changes received.',
    }),
    networkProgrammingDuration: getOrCreateHistogram({
      name: `${METRIC_PREFIX}proxy_network_programming_duration_seconds`,
      help: 'From the last-change-trigger-time of an EndpointSlice to its rules being applied on this node.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
    }),
    syncFailures: getOrCreateCounter({
      name: `${METRIC_PREFIX}proxy_sync_proxy_rules_failures_total`,
      help: 'Syncs whose rules the kernel refused or that could not run.',
    }),
    lastSyncTimestamp: getOrCreateGauge({
      name: `${METRIC_PREFIX}proxy_sync_proxy_rules_last_timestamp_seconds`,
      help: 'Unix time of the last successful sync.',
    }),
  };
}

/** Counts the `-A` lines of restore input: the number of rules it writes. */
export function countRules(restoreText: string): number {
  let count = 0;
  for (const line of restoreText.split('\n')) if (line.startsWith('-A ')) count += 1;
  return count;
}

/** Records the rule counts of one family's ruleset. */
export function recordRuleCounts(
  metrics: AgentMetrics,
  family: IPFamily,
  ruleset: { readonly filter: string; readonly nat: string },
): void {
  metrics.rules.labels({ table: 'filter', family }).set(countRules(ruleset.filter));
  metrics.rules.labels({ table: 'nat', family }).set(countRules(ruleset.nat));
}

/**
 * Parses the trigger-time annotation (RFC 3339); null when absent or malformed, since a slice
 * written by another controller may lack it and must not poison the histogram.
 */
export function triggerTimeOf(annotations: Readonly<Record<string, string>> | undefined): number | null {
  const value = annotations?.[LAST_CHANGE_TRIGGER_TIME_ANNOTATION];
  if (value === undefined) return null;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : parsed;
}
