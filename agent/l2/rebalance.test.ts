import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoordinationV1Api, CoreV1Api, type KubeConfig, type V1Node } from '@kubernetes/client-node';
import {
  kubeConfigFor,
  startTestApiServer,
  testLogger,
  waitFor,
} from '../../controllers/runtime/testing/harness.ts';
import type { ApiServer } from '../../e2e/apiserver/index.ts';
import type { AnnouncementAddresses } from './addresses.ts';
import { DEFAULT_L2_TIMING } from './announcer.ts';
import { l2LeaseName, preferenceOrder } from './eligibility.ts';
import { type L2Announcement, startL2Announcement } from './l2-announcement.ts';
import type { NodePresence } from './presence.ts';
import { type HandoffInput, handoffTarget } from './rebalance.ts';
import { publishLoadBalancerIP } from './testing.ts';

function presence(seen: Record<string, number>, ttlMs = 10_000): NodePresence {
  return {
    lastSeen: (node) => {
      const atMs = seen[node];
      return atMs === undefined ? undefined : { atMs, incarnation: `${node}#1` };
    },
    ttlMs,
  };
}

const base: HandoffInput = {
  preferred: ['node-a', 'node-b'],
  heldSinceMs: 1_000,
  nowMs: 5_000,
  presence: presence({}),
  blockedUntilMs: new Map(),
};

describe('handoffTarget', () => {
  const cases: { name: string; input: Partial<HandoffInput>; want: string | undefined }[] = [
    {
      name: 'nobody ahead: keep the IP',
      input: { preferred: [], presence: presence({ 'node-a': 4_000 }) },
      want: undefined,
    },
    { name: 'the preferred node has no presence: keep the IP', input: {}, want: undefined },
    {
      name: 'the preferred node last renewed before the takeover (its agent died): keep the IP',
      input: { presence: presence({ 'node-a': 900 }) },
      want: undefined,
    },
    {
      name: 'the preferred node renewed since the takeover: hand it back',
      input: { presence: presence({ 'node-a': 4_000 }) },
      want: 'node-a',
    },
    {
      name: 'the best live node wins when the first choice is gone',
      input: { presence: presence({ 'node-a': 900, 'node-b': 4_000 }) },
      want: 'node-b',
    },
    {
      name: 'both alive: the first choice',
      input: { presence: presence({ 'node-a': 4_500, 'node-b': 4_000 }) },
      want: 'node-a',
    },
    {
      name: 'a renewal older than the presence TTL does not count',
      input: { presence: presence({ 'node-a': 2_000 }, 2_000) },
      want: undefined,
    },
    {
      name: 'the agent the IP was just handed to (and came back from) is not offered it again yet',
      input: { presence: presence({ 'node-a': 4_000 }), blockedUntilMs: new Map([['node-a#1', 6_000]]) },
      want: undefined,
    },
    {
      name: 'a restarted agent on that node is',
      input: { presence: presence({ 'node-a': 4_000 }), blockedUntilMs: new Map([['node-a#0', 6_000]]) },
      want: 'node-a',
    },
    {
      name: 'and so is the same agent once the backoff is over',
      input: { presence: presence({ 'node-a': 4_000 }), blockedUntilMs: new Map([['node-a#1', 5_000]]) },
      want: 'node-a',
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => assert.equal(handoffTarget({ ...base, ...input }), want));
  }
});

/** Addresses in memory, shared by every node so a sampler can count carriers at any instant. */
class SharedLan {
  readonly carriers = new Map<string, Set<string>>();
  mostCarriers = 0;
  forNode(node: string): AnnouncementAddresses {
    const change = (ips: readonly string[], add: boolean) => {
      for (const ip of ips) {
        const set = this.carriers.get(ip) ?? new Set<string>();
        if (add) set.add(node);
        else set.delete(node);
        this.carriers.set(ip, set);
        this.mostCarriers = Math.max(this.mostCarriers, set.size);
      }
    };
    return {
      prepare: async () => {},
      configure: async (ips) => change(ips, true),
      remove: async (ips) => change(ips, false),
      configured: async () =>
        [...this.carriers.entries()].filter(([, nodes]) => nodes.has(node)).map(([ip]) => ip),
      announce: async () => {},
    };
  }
  holders(ip: string): string[] {
    return [...(this.carriers.get(ip) ?? [])].sort();
  }
}

describe('handing an IP back to its preferred node, against the local API server', () => {
  const namespace = 'kube-node-lease';
  const nodeNames = ['node-a', 'node-b', 'node-c'];
  const presenceTiming = { leaseDurationMs: 3_000, renewPeriodMs: 500 };
  let server: ApiServer;
  let kubeConfig: KubeConfig;
  let core: CoreV1Api;
  const lan = new SharedLan();
  const running = new Map<string, L2Announcement>();

  before(async () => {
    server = await startTestApiServer();
    kubeConfig = kubeConfigFor(server.kubeconfigPath);
    core = kubeConfig.makeApiClient(CoreV1Api);
    for (const name of nodeNames) await core.createNode({ body: node(name, true) });
  });

  after(async () => {
    for (const announcement of running.values()) await announcement.stop();
    await server.close();
  });

  function node(name: string, ready: boolean): V1Node {
    return {
      metadata: { name },
      status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
    };
  }

  async function startAgent(name: string): Promise<void> {
    const announcement = startL2Announcement({
      kubeConfig: kubeConfigFor(server.kubeconfigPath),
      nodeName: name,
      leaseNamespace: namespace,
      timing: DEFAULT_L2_TIMING,
      presenceTiming,
      logger: testLogger(),
      addresses: lan.forNode(name),
    });
    running.set(name, announcement);
    await announcement.synced;
  }

  async function setReady(name: string, ready: boolean): Promise<void> {
    const current = await core.readNode({ name });
    await core.replaceNodeStatus({ name, body: { ...current, status: node(name, ready).status } });
  }

  async function leaseHolder(ip: string): Promise<string> {
    const lease = await kubeConfig
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ namespace, name: l2LeaseName(ip) });
    return lease.spec?.holderIdentity ?? '';
  }

  test('Ready again, or its agent back: the IP returns to the first choice, never on two nodes', async () => {
    const ip = '198.18.200.30';
    const [first, second] = preferenceOrder(nodeNames, ip) as [string, string, string];
    for (const name of nodeNames) await startAgent(name);
    await publishLoadBalancerIP(core, { ip });
    await waitFor(() => lan.holders(ip).join() === first, `${first} announcing ${ip}`);

    await setReady(first, false);
    await waitFor(() => lan.holders(ip).join() === second, `${second} taking ${ip} over`);
    const readyAt = Date.now();
    await setReady(first, true);
    await waitFor(() => lan.holders(ip).join() === first, `${ip} back on ${first} once Ready`);
    const backMs = Date.now() - readyAt;
    assert.ok(backMs < 3_000, `handed back ${backMs} ms after Ready`);
    assert.equal(await leaseHolder(ip), first);

    // A clean stop releases the IP to the next node; a new agent on the first node gets it back.
    await running.get(first)!.stop();
    running.delete(first);
    await waitFor(() => lan.holders(ip).length === 1 && lan.holders(ip)[0] !== first, `${ip} failed over`);
    await startAgent(first);
    await waitFor(() => lan.holders(ip).join() === first, `${ip} back on ${first}'s new agent`);
    assert.equal(await leaseHolder(ip), first);
    assert.equal(lan.mostCarriers, 1, 'the IP was never on two nodes');
  });
});
