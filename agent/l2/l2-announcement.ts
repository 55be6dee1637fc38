/**
 * Wires L2 announcement into a process: informers for Services, EndpointSlices and Nodes feed
 * {@link planAnnouncements}; this node's share of the plan goes to an {@link L2Announcer}. The
 * agent process starts it with {@link startL2Announcement}; `portico-l2-announcer.ts` runs it alone.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { KubeConfig, V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { Informer } from '../../controllers/runtime/informer.ts';
import { describeError } from '../../controllers/runtime/kube.ts';
import type { Logger } from '../../controllers/runtime/logging.ts';
import { type AnnouncementAddresses, IpAddressDriver } from './addresses.ts';
import {
  ADDRESS_LIFETIME_SECONDS,
  type AnnouncementTarget,
  DEFAULT_L2_TIMING,
  L2Announcer,
  type L2Timing,
} from './announcer.ts';
import { type IpAnnouncement, planAnnouncements } from './eligibility.ts';
import { L2Presence, type PresenceTiming } from './presence.ts';

/** Options of {@link startL2Announcement}. */
export interface L2AnnouncementOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  /** Namespace of the per-IP Leases. */
  leaseNamespace: string;
  /** The LAN interface; when absent, the interface carrying the node's InternalIP. */
  interface?: string;
  /** Run address commands in this network namespace (dataplane tests). */
  netns?: string;
  /** The Services' `loadBalancerClass` handled besides none. */
  loadBalancerClass?: string;
  timing?: L2Timing;
  logger: Logger;
  /** Replaces the kernel driver (lease tests without a dataplane). */
  addresses?: AnnouncementAddresses;
  /** Timing of the presence Lease that lets other nodes hand IPs back (presence.ts). */
  presenceTiming?: PresenceTiming;
}

/** A running L2 announcement; {@link stop} removes every address and releases every lease. */
export interface L2Announcement {
  readonly announcer: L2Announcer;
  /** Resolves once the three informers listed and the first plan was applied. */
  readonly synced: Promise<void>;
  stop(): Promise<void>;
}

/** Environment variables that turn L2 announcement on inside `portico-agent` (see README). */
export const L2_ENV = {
  enable: 'PORTICO_L2_ANNOUNCE',
  interface: 'PORTICO_L2_INTERFACE',
  leaseNamespace: 'POD_NAMESPACE',
} as const;

/**
 * The agent's L2 settings from its environment (the chart sets them on the DaemonSet): undefined
 * unless `PORTICO_L2_ANNOUNCE=true`; Leases go to the agent's own namespace (`POD_NAMESPACE`
 * from the downward API, else `portico-system`).
 */
export function l2SettingsFromEnv(
  env: NodeJS.ProcessEnv,
): Pick<L2AnnouncementOptions, 'leaseNamespace' | 'interface'> | undefined {
  const enabled = env[L2_ENV.enable];
  if (enabled === undefined || enabled === '' || enabled === 'false') return undefined;
  if (enabled !== 'true') {
    throw new Error(`${L2_ENV.enable}: Unsupported value: "${enabled}": supported values: "true", "false"`);
  }
  const device = env[L2_ENV.interface];
  return {
    leaseNamespace: env[L2_ENV.leaseNamespace] || 'portico-system',
    ...(device === undefined || device === '' ? {} : { interface: device }),
  };
}

/** This node's targets from the plan: the IPs it is a candidate for, with its rank and the nodes ahead. */
export function targetsForNode(plan: readonly IpAnnouncement[], nodeName: string): AnnouncementTarget[] {
  const targets: AnnouncementTarget[] = [];
  for (const entry of plan) {
    const rank = entry.candidates.indexOf(nodeName);
    if (rank >= 0) targets.push({ ip: entry.ip, rank, preferred: entry.candidates.slice(0, rank) });
  }
  return targets;
}

/** The interface holding `address`, from `ip -j addr` (in `netns` when given). */
export async function interfaceWithAddress(address: string, netns?: string): Promise<string | undefined> {
  const args = [...(netns === undefined ? [] : ['-n', netns]), '-j', 'addr', 'show'];
  const { stdout } = await promisify(execFile)('/usr/sbin/ip', args, { encoding: 'utf8' });
  const links = JSON.parse(stdout) as { ifname?: string; addr_info?: { local?: string }[] }[];
  return links.find((link) => (link.addr_info ?? []).some((info) => info.local === address))?.ifname;
}

function internalIp(node: V1Node | undefined): string | undefined {
  return node?.status?.addresses?.find((address) => address.type === 'InternalIP')?.address;
}

/** Starts the informers and the announcer. */
export function startL2Announcement(options: L2AnnouncementOptions): L2Announcement {
  const logger = options.logger.child({ component: 'l2-announcement' });
  const { kubeConfig } = options;
  const services = new Informer<V1Service>({ kubeConfig, path: '/api/v1/services', logger });
  const slices = new Informer<V1EndpointSlice>({
    kubeConfig,
    path: '/apis/discovery.k8s.io/v1/endpointslices',
    logger,
  });
  const nodes = new Informer<V1Node>({ kubeConfig, path: '/api/v1/nodes', logger });
  const timing = options.timing ?? DEFAULT_L2_TIMING;
  let announcer: L2Announcer | undefined;
  const presence = new L2Presence({
    kubeConfig,
    namespace: options.leaseNamespace,
    nodeName: options.nodeName,
    timing: options.presenceTiming,
    logger,
    onChange: () => {
      announcer?.rebalance().catch((error: unknown) => {
        logger.warn('L2 rebalance failed', { error: describeError(error) });
      });
    },
  });
  let scheduled: NodeJS.Timeout | undefined;
  let stopped = false;

  const reconcile = async (): Promise<void> => {
    if (announcer === undefined || stopped) return;
    const plan = planAnnouncements(services.list(), slices.list(), nodes.list(), options.loadBalancerClass);
    await announcer.update(targetsForNode(plan, options.nodeName));
  };
  // Bursts of events (a rollout touching every slice) collapse into one plan.
  const schedule = (): void => {
    if (scheduled !== undefined || stopped) return;
    scheduled = setTimeout(() => {
      scheduled = undefined;
      reconcile().catch((error: unknown) =>
        logger.error('L2 reconcile failed', { error: describeError(error) }),
      );
    }, 50);
  };
  for (const informer of [services, slices, nodes] as const) {
    (informer as Informer<V1Service | V1EndpointSlice | V1Node>).addEventHandler({
      onAdd: schedule,
      onUpdate: schedule,
      onDelete: schedule,
    });
    informer.start();
  }

  const synced = (async () => {
    await Promise.all([services.waitForSync(), slices.waitForSync(), nodes.waitForSync(), presence.watch()]);
    const addresses = options.addresses ?? (await kernelAddresses(options, nodes.get(options.nodeName)));
    announcer = new L2Announcer({
      kubeConfig,
      namespace: options.leaseNamespace,
      nodeName: options.nodeName,
      addresses,
      timing,
      logger,
      presence,
    });
    announcer.start();
    await reconcile();
    // Only now: a node that sees this presence may hand over an IP, and this node's campaigns
    // for its IPs exist to take it.
    presence.announce();
  })();

  return {
    get announcer(): L2Announcer {
      if (announcer === undefined) throw new Error('L2 announcement has not synced yet');
      return announcer;
    },
    synced,
    async stop() {
      stopped = true;
      clearTimeout(scheduled);
      await Promise.all([services.stop(), slices.stop(), nodes.stop()]);
      await synced.catch(() => undefined);
      // Presence first, so no node hands this one an IP while its campaigns end.
      await presence.stop();
      await announcer?.stop();
    },
  };
}

async function kernelAddresses(
  options: L2AnnouncementOptions,
  node: V1Node | undefined,
): Promise<IpAddressDriver> {
  let device = options.interface;
  if (device === undefined) {
    const address = internalIp(node);
    device = address === undefined ? undefined : await interfaceWithAddress(address, options.netns);
  }
  if (device === undefined) {
    throw new Error(
      `--l2-interface: Required value: node ${options.nodeName} has no InternalIP on a local interface; name the LAN interface`,
    );
  }
  return new IpAddressDriver({
    interface: device,
    netns: options.netns,
    lifetimeSeconds: ADDRESS_LIFETIME_SECONDS,
  });
}
