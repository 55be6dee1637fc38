import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CoordinationV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  type KubeConfig,
  type V1Node,
} from '@kubernetes/client-node';
import {
  CuttingProxy,
  kubeConfigFor,
  startTestApiServer,
  testLogger,
  waitFor,
} from '../../controllers/runtime/testing/harness.ts';
import type { ApiServer } from '../../e2e/apiserver/index.ts';
import type { AnnouncementAddresses } from './addresses.ts';
import { DEFAULT_L2_TIMING, type L2Timing, validateL2Timing } from './announcer.ts';
import { l2LeaseName, preferenceOrder } from './eligibility.ts';
import { type L2Announcement, startL2Announcement } from './l2-announcement.ts';

/**
 * The node's addresses kept in memory: these tests are about leases against a real API server;
 * the kernel side has its own dataplane test (e2e/local/l2-announcement.test.ts).
 */
class RecordedAddresses implements AnnouncementAddresses {
  readonly configuredIps = new Set<string>();
  readonly announcements: string[] = [];
  async prepare(): Promise<void> {}
  async configure(ips: readonly string[]): Promise<void> {
    for (const ip of ips) this.configuredIps.add(ip);
  }
  async remove(ips: readonly string[]): Promise<void> {
    for (const ip of ips) this.configuredIps.delete(ip);
  }
  async configured(): Promise<string[]> {
    return [...this.configuredIps];
  }
  async announce(ip: string): Promise<void> {
    this.announcements.push(ip);
  }
}

const LEASE_NAMESPACE = 'kube-node-lease';
const timing: L2Timing = { ...DEFAULT_L2_TIMING, contendDelayMs: 1_000 };

function readyNode(name: string, ready = true): V1Node {
  return {
    metadata: { name },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

interface NodeAgent {
  name: string;
  addresses: RecordedAddresses;
  announcement: L2Announcement;
  proxy: CuttingProxy;
}

describe('L2 announcer leases against the local API server', () => {
  let server: ApiServer;
  let kubeConfig: KubeConfig;
  let core: CoreV1Api;
  let leases: CoordinationV1Api;
  let discovery: DiscoveryV1Api;
  const agents: NodeAgent[] = [];

  before(async () => {
    server = await startTestApiServer();
    kubeConfig = kubeConfigFor(server.kubeconfigPath);
    core = kubeConfig.makeApiClient(CoreV1Api);
    leases = kubeConfig.makeApiClient(CoordinationV1Api);
    discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
    for (const name of ['node-a', 'node-b']) await core.createNode({ body: readyNode(name) });
  });

  after(async () => {
    for (const agent of agents) {
      await agent.announcement.stop();
      await agent.proxy.close().catch(() => undefined);
    }
    await server.close();
  });

  async function startAgent(name: string): Promise<NodeAgent> {
    const proxy = await CuttingProxy.start(Number(new URL(server.url).port));
    const addresses = new RecordedAddresses();
    const announcement = startL2Announcement({
      kubeConfig: kubeConfigFor(server.kubeconfigPath, proxy.url),
      nodeName: name,
      leaseNamespace: LEASE_NAMESPACE,
      timing,
      logger: testLogger(),
      addresses,
    });
    await announcement.synced;
    const agent = { name, addresses, announcement, proxy };
    agents.push(agent);
    return agent;
  }

  async function createLoadBalancer(name: string, ip: string): Promise<void> {
    await core.createNamespacedService({
      namespace: 'default',
      body: { metadata: { name }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } },
    });
    const created = await core.readNamespacedService({ namespace: 'default', name });
    await core.replaceNamespacedServiceStatus({
      namespace: 'default',
      name,
      body: { ...created, status: { loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } } },
    });
  }

  async function holder(ip: string): Promise<string> {
    const lease = await leases.readNamespacedLease({ namespace: LEASE_NAMESPACE, name: l2LeaseName(ip) });
    return lease.spec?.holderIdentity ?? '';
  }

  function carriers(ip: string): string[] {
    return agents.filter((agent) => agent.addresses.configuredIps.has(ip)).map((agent) => agent.name);
  }

  test('the timing flags are checked with their names', () => {
    assert.deepEqual(validateL2Timing(DEFAULT_L2_TIMING), []);
    assert.match(
      validateL2Timing({ ...DEFAULT_L2_TIMING, leaseDurationMs: 2_000, renewDeadlineMs: 1_500 }).join('\n'),
      /--l2-lease-duration: Invalid value: "2s": must be at least 2.25s/,
    );
  });

  test('of two nodes exactly one announces each IP, the first in its preference order', async () => {
    await startAgent('node-a');
    await startAgent('node-b');
    const ips = ['198.18.200.1', '198.18.200.2', '198.18.200.3', '198.18.200.4'];
    for (const [index, ip] of ips.entries()) await createLoadBalancer(`web-${index}`, ip);
    for (const ip of ips) {
      await waitFor(() => carriers(ip).length === 1, `one node announcing ${ip}`);
      const preferred = preferenceOrder(['node-a', 'node-b'], ip)[0];
      assert.deepEqual(carriers(ip), [preferred]);
      assert.equal(await holder(ip), preferred);
    }
    const owners = new Set(ips.map((ip) => carriers(ip)[0]));
    assert.equal(owners.size, 2, 'ownership is spread over both nodes');
    assert.ok(
      agents.every((agent) => agent.addresses.announcements.length > 0),
      'takeovers send gratuitous ARP',
    );
  });

  test('externalTrafficPolicy Local: only a node with a ready local endpoint announces, even if not preferred', async () => {
    const ip = '198.18.200.20';
    const [, second] = preferenceOrder(['node-a', 'node-b'], ip);
    await core.createNamespacedService({
      namespace: 'default',
      body: {
        metadata: { name: 'local-web' },
        spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [{ port: 80 }] },
      },
    });
    await discovery.createNamespacedEndpointSlice({
      namespace: 'default',
      body: {
        metadata: { name: 'local-web-1', labels: { 'kubernetes.io/service-name': 'local-web' } },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['198.18.1.2'], nodeName: second, conditions: { ready: true } }],
        ports: [{ port: 80, protocol: 'TCP' }],
      },
    });
    const created = await core.readNamespacedService({ namespace: 'default', name: 'local-web' });
    await core.replaceNamespacedServiceStatus({
      namespace: 'default',
      name: 'local-web',
      body: { ...created, status: { loadBalancer: { ingress: [{ ip, ipMode: 'VIP' }] } } },
    });
    await waitFor(() => carriers(ip).length === 1, `one node announcing ${ip}`);
    assert.deepEqual(carriers(ip), [second]);
    assert.equal(await holder(ip), second);
    await core.deleteNamespacedService({ namespace: 'default', name: 'local-web' });
    await waitFor(() => carriers(ip).length === 0, `${ip} withdrawn after the Service is deleted`);
    // The address goes before the lease, so the release follows shortly after.
    await waitFor(async () => (await holder(ip)) === '', `the lease of ${ip} released`);
  });

  test('a resync removes announced addresses this node holds no lease for, and restores held ones', async () => {
    const agent = agents[0]!;
    const held = agent.announcement.announcer.announcedIps();
    assert.ok(held.length > 0);
    agent.addresses.configuredIps.add('198.18.200.99');
    agent.addresses.configuredIps.delete(held[0]!);
    await agent.announcement.announcer.resync();
    assert.ok(!agent.addresses.configuredIps.has('198.18.200.99'), 'the stray address is gone');
    assert.ok(agent.addresses.configuredIps.has(held[0]!), 'the held address is back');
  });

  test('a node cut off from the API server withdraws; the other takes over within lease duration + retry', async () => {
    const ip = '198.18.200.1';
    const [first] = carriers(ip);
    const owner = agents.find((agent) => agent.name === first)!;
    const other = agents.find((agent) => agent.name !== first)!;
    const cutAt = Date.now();
    await owner.proxy.close();
    await waitFor(() => carriers(ip).join() === other.name, `${other.name} to take ${ip} over`, 10_000);
    const failoverMs = Date.now() - cutAt;
    assert.ok(
      failoverMs <= timing.leaseDurationMs + timing.retryPeriodMs + 1_000,
      `failover took ${failoverMs} ms`,
    );
    assert.equal(await holder(ip), other.name);
    assert.deepEqual(carriers(ip), [other.name], 'never on two nodes');
  });

  test('a node that stops being eligible releases at once, and clean shutdown releases too', async () => {
    const ip = '198.18.200.9';
    const survivor = agents.find((agent) => agent.announcement.announcer.announcedIps().length > 0)!;
    const [nodeC] = [await startAgent('node-c')];
    await core.createNode({ body: readyNode('node-c') });
    const wasPreferred = preferenceOrder([survivor.name, 'node-c'], ip)[0];
    await createLoadBalancer('web-9', ip);
    await waitFor(() => carriers(ip).length === 1, `one node announcing ${ip}`);
    assert.equal(carriers(ip)[0], wasPreferred);
    const owner = carriers(ip)[0] === 'node-c' ? nodeC : survivor;
    const next = owner === nodeC ? survivor : nodeC;

    const notReadyAt = Date.now();
    const node = await core.readNode({ name: owner.name });
    await core.replaceNodeStatus({
      name: owner.name,
      body: { ...node, status: { conditions: [{ type: 'Ready', status: 'False' }] } },
    });
    await waitFor(() => carriers(ip).join() === next.name, `${next.name} to take ${ip} over`, 10_000);
    const handoverMs = Date.now() - notReadyAt;
    assert.ok(
      handoverMs < timing.leaseDurationMs,
      `release handed over in ${handoverMs} ms, before any expiry`,
    );

    await core.replaceNodeStatus({
      name: owner.name,
      body: {
        ...(await core.readNode({ name: owner.name })),
        status: { conditions: [{ type: 'Ready', status: 'True' }] },
      },
    });
    const stoppedAt = Date.now();
    await next.announcement.stop();
    assert.equal(next.addresses.configuredIps.size, 0, 'shutdown removes every address');
    await waitFor(() => carriers(ip).join() === owner.name, `${owner.name} to take ${ip} back`, 10_000);
    assert.ok(Date.now() - stoppedAt < timing.leaseDurationMs, 'released lease taken before it would expire');
  });
});
