/**
 * Shared set-up of the nftables tests: a tracker filled with Services and slices, rendered with
 * the iptables tests' options so both modes see the same cluster.
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { SyncScope } from '../proxier.ts';
import { TEST_NODE } from '../state/test-fixtures.ts';
import { ChangeTracker } from '../state/tracker.ts';
import type { IPFamily, NodeInfo } from '../state/types.ts';
import {
  DEFAULT_NFTABLES_RENDER_OPTIONS,
  type NftablesRenderOptions,
  type NftablesRuleset,
  renderNftablesRules,
} from './render.ts';

/** Render options of the tests: the seed's pod CIDR as cluster CIDR, both families. */
export const TEST_NFTABLES_RENDER_OPTIONS: NftablesRenderOptions = {
  ...DEFAULT_NFTABLES_RENDER_OPTIONS,
  clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/48'],
};

/** A full sync of the given objects as seen from `node`. */
export function renderNftablesFull(
  services: V1Service[],
  slices: V1EndpointSlice[],
  options: { family?: IPFamily; node?: NodeInfo; render?: Partial<NftablesRenderOptions> } = {},
): NftablesRuleset {
  const node = options.node ?? TEST_NODE;
  const tracker = new ChangeTracker({ node });
  for (const service of services) tracker.updateService(service);
  for (const slice of slices) tracker.updateEndpointSlice(slice);
  const scope: SyncScope = { changedServices: 'all', existingObjects: new Set() };
  return renderNftablesRules(tracker.snapshot().desired[options.family ?? 'IPv4'], node, scope, {
    ...TEST_NFTABLES_RENDER_OPTIONS,
    ...options.render,
  });
}
