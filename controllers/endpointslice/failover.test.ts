import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CoordinationV1Api, type V1EndpointSlice, type V1Pod } from '@kubernetes/client-node';
import { MANAGED_BY_ENDPOINTSLICE_CONTROLLER } from '../../api/labels.ts';
import { type ApiServer, startApiServer } from '../../e2e/apiserver/index.ts';
import {
  type ClusterClients,
  clientsFor,
  clusterIPService,
  createNode,
  createRunningPod,
  eventually,
  inBatches,
  podIP,
  setPodReady,
  slicesOf,
} from '../endpoint-test-cluster.ts';

const ENTRYPOINT = fileURLToPath(new URL('../portico-controller-manager.ts', import.meta.url));
const LEASE = 'portico-failover';
const PODS = 60;
const PER_SLICE = 20;

/** `pod name → ready` as the slices publish it; a pod listed twice makes the entry `duplicate`. */
function publishedReadiness(slices: V1EndpointSlice[]): Map<string, boolean | 'duplicate'> {
  const published = new Map<string, boolean | 'duplicate'>();
  for (const slice of slices) {
    for (const endpoint of slice.endpoints ?? []) {
      const name = endpoint.targetRef?.name ?? '';
      published.set(name, published.has(name) ? 'duplicate' : endpoint.conditions?.ready === true);
    }
  }
  return published;
}

function podReadiness(pods: V1Pod[]): Map<string, boolean> {
  return new Map(
    pods.map((pod) => [
      pod.metadata?.name ?? '',
      pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
    ]),
  );
}

describe('EndpointSlice controller failover between two controller-manager processes', () => {
  let server: ApiServer;
  let clients: ClusterClients;
  const children: ChildProcess[] = [];

  before(async () => {
    server = await startApiServer({ bookmarkIntervalMs: 60_000 });
    clients = clientsFor(server.kubeconfigPath);
  });
  after(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await Promise.all(
      children.map((child) =>
        child.exitCode === null && child.signalCode === null ? once(child, 'exit') : undefined,
      ),
    );
    await server?.close();
  });

  /** Starts a controller manager; resolves with the process and its leader election identity. */
  async function startManager(): Promise<{ child: ChildProcess; identity: string }> {
    const child = spawn(
      process.execPath,
      [
        ENTRYPOINT,
        `--kubeconfig=${server.kubeconfigPath}`,
        '--namespace=default',
        `--leader-election-id=${LEASE}`,
        '--leader-elect-lease-duration=3s',
        '--leader-elect-renew-deadline=2s',
        '--leader-elect-retry-period=500ms',
        '--health-addr=127.0.0.1:0',
        '--metrics-addr=127.0.0.1:0',
        '--log-level=info',
        `--max-endpoints-per-slice=${PER_SLICE}`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    const identity = await new Promise<string>((resolve, reject) => {
      let buffered = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) {
          const record = JSON.parse(line) as { message?: string; identity?: string };
          if (record.message === 'controller manager started' && record.identity) resolve(record.identity);
        }
      });
      child.once('exit', (code) =>
        reject(new Error(`controller manager exited with ${code} before starting`)),
      );
    });
    return { child, identity };
  }

  async function leaseHolder(): Promise<string> {
    const coordination = clients.kubeConfig.makeApiClient(CoordinationV1Api);
    try {
      const lease = await coordination.readNamespacedLease({ name: LEASE, namespace: 'default' });
      return lease.spec?.holderIdentity ?? '';
    } catch {
      return '';
    }
  }

  test('SIGKILL of the leader mid-churn: the standby converges to exactly the pods, no duplicate slices', {
    timeout: 60_000,
  }, async () => {
    await createNode(clients.core, 'node-a', 'zone-a');
    await createNode(clients.core, 'node-b', 'zone-b');
    const indexes = Array.from({ length: PODS }, (_, i) => i);
    await inBatches(indexes, 12, (i) =>
      createRunningPod(clients.core, {
        name: `churn-${i}`,
        labels: { app: 'churn' },
        ip: podIP(100 + i),
        nodeName: i % 2 === 0 ? 'node-a' : 'node-b',
        ready: true,
      }),
    );
    await clients.core.createNamespacedService({
      namespace: 'default',
      body: clusterIPService('churn', { app: 'churn' }, '10.96.0.41'),
    });
    const managers = [await startManager(), await startManager()];
    const slices = () => slicesOf(clients.discovery, 'churn', MANAGED_BY_ENDPOINTSLICE_CONTROLLER);
    await eventually(
      slices,
      (found) => found.reduce((sum, slice) => sum + (slice.endpoints?.length ?? 0), 0) === PODS,
      'the leader to publish every pod',
      20_000,
    );
    const holder = await leaseHolder();
    const leader = managers.find((manager) => manager.identity === holder);
    const standby = managers.find((manager) => manager.identity !== holder);
    assert.ok(leader && standby, `the lease holder ${holder} is one of the two managers`);

    let churning = true;
    let flips = 0;
    const churn = (async () => {
      while (churning) {
        const i = Math.floor(Math.random() * PODS);
        const pod = await clients.core.readNamespacedPod({ name: `churn-${i}`, namespace: 'default' });
        const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
        await setPodReady(clients.core, pod, !ready);
        flips += 1;
        await sleep(20);
      }
    })();
    await sleep(1_000);
    leader.child.kill('SIGKILL');
    await once(leader.child, 'exit');
    await eventually(
      leaseHolder,
      (current) => current === standby.identity,
      'the standby to take the lease',
      10_000,
    );
    await sleep(1_500);
    churning = false;
    await churn;
    assert.ok(flips > 20, `readiness flipped ${flips} times during the test`);
    assert.equal(standby.child.exitCode, null, 'the standby still runs');

    const pods = await clients.core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=churn' });
    const expected = podReadiness(pods.items);
    const converged = await eventually(
      slices,
      (found) => {
        const published = publishedReadiness(found);
        return (
          published.size === expected.size &&
          [...expected].every(([name, ready]) => published.get(name) === ready)
        );
      },
      'the slices to equal the pods',
      20_000,
    );
    assert.ok([...publishedReadiness(converged).values()].every((value) => value !== 'duplicate'));
    assert.equal(converged.length, PODS / PER_SLICE, 'one set of slices for the single port set and family');
    assert.ok(
      converged.every((slice) => slice.addressType === 'IPv4'),
      'every slice is of the Service family',
    );
  });
});
