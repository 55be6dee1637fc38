import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { createLogger } from '../../controllers/runtime/logging.ts';
import { startApiServer } from '../apiserver/index.ts';
import { LocalCluster, type LocalClusterOptions } from './cluster.ts';
import { ipv4ToNumber, parseIpv4Cidr } from './ipam.ts';
import { IpCommand, newRunId } from './netns.ts';
import { readinessOverrideAnnotation } from './pod-status.ts';

const execFileAsync = promisify(execFile);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const demo = new URL('../../examples/clusterip-demo/', import.meta.url).pathname;

async function kubectl(kubeconfig: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('kubectl', ['--kubeconfig', kubeconfig, ...args], {
    timeout: 30_000,
  });
  return stdout;
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Polls the cluster's pod cache until `predicate` holds for the live pods of `default`. */
async function waitForPods(
  cluster: LocalCluster,
  predicate: (pods: V1Pod[]) => boolean,
  what: string,
  timeoutMs = 40_000,
): Promise<V1Pod[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pods = cluster.pods.listInNamespace('default');
    if (predicate(pods)) return pods;
    if (Date.now() > deadline) {
      const summary = pods.map(
        (p) => `${p.metadata?.name}:${p.spec?.nodeName ?? '-'}:${p.status?.podIP ?? '-'}:${isReady(p)}`,
      );
      assert.fail(`timed out waiting for ${what}; pods: ${summary.join(' ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const readyCount = (count: number) => (pods: V1Pod[]) =>
  pods.length === count && pods.every((pod) => isReady(pod) && pod.metadata?.deletionTimestamp === undefined);

function assertPlacement(cluster: LocalCluster, pods: V1Pod[]): void {
  const ips = pods.map((pod) => pod.status?.podIP ?? '');
  assert.equal(new Set(ips).size, ips.length, `pod IPs are distinct: ${ips.join(', ')}`);
  for (const pod of pods) {
    const node = cluster.nodes.find((n) => n.name === pod.spec?.nodeName);
    assert.ok(node !== undefined, `${pod.metadata?.name} is bound to a local node`);
    const { network, prefixLength } = parseIpv4Cidr(node.podCidr);
    const ip = ipv4ToNumber(pod.status?.podIP ?? '0.0.0.0');
    const broadcast = network + 2 ** (32 - prefixLength) - 1;
    // Neither the network address, nor the node's gateway (.1), nor the broadcast address.
    assert.ok(ip > network + 1 && ip < broadcast, `${pod.status?.podIP} is a pod address of ${node.podCidr}`);
    assert.equal(pod.status?.hostIP, node.internalIp);
  }
  const perNode = new Map<string, number>();
  for (const pod of pods)
    perNode.set(pod.spec?.nodeName ?? '', (perNode.get(pod.spec?.nodeName ?? '') ?? 0) + 1);
  const counts = [...perNode.values()];
  assert.ok(
    Math.max(...counts) - Math.min(...counts) <= 1,
    `pods spread by count: ${JSON.stringify([...perNode])}`,
  );
}

async function withCluster(
  dataplane: boolean,
  body: (cluster: LocalCluster, kubeconfig: string) => Promise<void>,
  addressing: Pick<LocalClusterOptions, 'nodeCount' | 'podCidr' | 'nodeCidrMaskSize'> = {},
): Promise<LocalCluster> {
  const dataDir = await mkdtemp(join(tmpdir(), 'portico-local-test-'));
  const server = await startApiServer({ dataDir });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(server.kubeconfigPath);
  let cluster: LocalCluster | undefined;
  try {
    cluster = await LocalCluster.start({
      kubeConfig,
      logger: createLogger({ level: 'silent' }),
      dataplane,
      runId: newRunId(),
      heartbeatMs: 1_000,
      ...addressing,
    });
    await body(cluster, server.kubeconfigPath);
    return cluster;
  } finally {
    await cluster?.stop();
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

describe('local cluster, control-plane mode', () => {
  test("the seeds' Deployment and extra Pod become 4 Ready pods with distinct IPs; scale 10 and 2 follow", async () => {
    await withCluster(false, async (cluster, kubeconfig) => {
      const nodes = await kubectl(kubeconfig, 'get', 'nodes', '-o', 'json');
      const nodeItems = (
        JSON.parse(nodes) as {
          items: { metadata: { name: string; labels: Record<string, string> }; spec: { podCIDR: string } }[];
        }
      ).items;
      assert.deepEqual(
        nodeItems.map((n) => [
          n.metadata.name,
          n.spec.podCIDR,
          n.metadata.labels['topology.kubernetes.io/zone'],
        ]),
        [
          ['node-0', '198.18.0.0/24', 'zone-a'],
          ['node-1', '198.18.1.0/24', 'zone-b'],
        ],
      );
      await kubectl(kubeconfig, 'create', '-f', join(demo, 'deployment.yaml'), '-f', join(demo, 'pod.yaml'));
      const pods = await waitForPods(cluster, readyCount(4), '4 ready pods');
      assertPlacement(cluster, pods);
      const owned = pods.filter((pod) => pod.metadata?.ownerReferences?.[0]?.kind === 'ReplicaSet');
      assert.equal(owned.length, 3, 'the Deployment owns 3 pods through its ReplicaSet');
      assert.ok(owned.every((pod) => pod.metadata?.labels?.['pod-template-hash'] !== undefined));

      await kubectl(kubeconfig, 'annotate', 'pod', 'examplepod', `${readinessOverrideAnnotation}=false`);
      await waitForPods(
        cluster,
        (current) => current.some((pod) => pod.metadata?.name === 'examplepod' && !isReady(pod)),
        'examplepod to turn unready',
      );
      await kubectl(kubeconfig, 'annotate', 'pod', 'examplepod', `${readinessOverrideAnnotation}-`);
      await waitForPods(cluster, readyCount(4), 'examplepod to turn ready again');

      await kubectl(kubeconfig, 'scale', 'deployment', 'exampleservice', '--replicas=10');
      assertPlacement(cluster, await waitForPods(cluster, readyCount(11), '11 ready pods'));
      await kubectl(kubeconfig, 'scale', 'deployment', 'exampleservice', '--replicas=2');
      await waitForPods(cluster, readyCount(3), '3 ready pods after scaling down');

      const deployment = JSON.parse(
        await kubectl(kubeconfig, 'get', 'deployment', 'exampleservice', '-o', 'json'),
      ) as {
        status: Record<string, unknown>;
      };
      assert.equal(deployment.status.readyReplicas, 2);
      assert.equal(deployment.status.updatedReplicas, 2);
    });
  });

  test("pods of a 3-node cluster with --pod-cidr 10.0.0.0/16 and /20 per node get IPs in their node's /20", async () => {
    await withCluster(
      false,
      async (cluster, kubeconfig) => {
        assert.deepEqual(
          cluster.nodes.map((node) => node.podCidr),
          ['10.0.0.0/20', '10.0.16.0/20', '10.0.32.0/20'],
        );
        const nodes = JSON.parse(await kubectl(kubeconfig, 'get', 'nodes', '-o', 'json')) as {
          items: { metadata: { name: string }; spec: { podCIDRs: string[] } }[];
        };
        assert.deepEqual(
          nodes.items.map((n) => [n.metadata.name, n.spec.podCIDRs]),
          [
            ['node-0', ['10.0.0.0/20']],
            ['node-1', ['10.0.16.0/20']],
            ['node-2', ['10.0.32.0/20']],
          ],
        );
        await kubectl(kubeconfig, 'create', '-f', join(demo, 'deployment.yaml'));
        await kubectl(kubeconfig, 'scale', 'deployment', 'exampleservice', '--replicas=9');
        const pods = await waitForPods(cluster, readyCount(9), '9 ready pods');
        assertPlacement(cluster, pods);
        assert.equal(new Set(pods.map((pod) => pod.spec?.nodeName)).size, 3, 'every node runs pods');
      },
      { nodeCount: 3, podCidr: '10.0.0.0/16', nodeCidrMaskSize: 20 },
    );
  });

  test('a pod range that cannot hold the nodes is refused before anything starts', async () => {
    const kubeConfig = new KubeConfig();
    await assert.rejects(
      LocalCluster.start({
        kubeConfig,
        logger: createLogger({ level: 'silent' }),
        nodeCount: 3,
        podCidr: '10.0.0.0/16',
        nodeCidrMaskSize: 17,
      }),
      /--nodes: Invalid value: 3: --pod-cidr 10.0.0.0\/16 with --node-cidr-mask-size 17 holds 2 node pod CIDRs/,
    );
  });

  test('a ReplicaSet adopts a matching orphan pod and creates only the rest', async () => {
    await withCluster(false, async (cluster, kubeconfig) => {
      const dir = await mkdtemp(join(tmpdir(), 'portico-adopt-'));
      const containers = [{ name: 'web', image: 'demo', ports: [{ containerPort: 80 }] }];
      await writeFile(
        join(dir, 'orphan.json'),
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'orphan', labels: { app: 'adopt' } },
          spec: { containers },
        }),
      );
      await writeFile(
        join(dir, 'rs.json'),
        JSON.stringify({
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          metadata: { name: 'adopter' },
          spec: {
            replicas: 2,
            selector: { matchLabels: { app: 'adopt' } },
            template: { metadata: { labels: { app: 'adopt' } }, spec: { containers } },
          },
        }),
      );
      try {
        await kubectl(kubeconfig, 'create', '-f', join(dir, 'orphan.json'));
        await waitForPods(cluster, readyCount(1), 'the orphan to run');
        await kubectl(kubeconfig, 'create', '-f', join(dir, 'rs.json'));
        const pods = await waitForPods(
          cluster,
          (current) =>
            readyCount(2)(current) &&
            current.every((p) => p.metadata?.ownerReferences?.[0]?.name === 'adopter'),
          'the orphan adopted and one pod created',
        );
        assert.ok(pods.some((p) => p.metadata?.name === 'orphan'));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  test('nodes keep their Ready heartbeat fresh', async () => {
    await withCluster(false, async (_cluster, kubeconfig) => {
      const heartbeat = async () => {
        const node = JSON.parse(await kubectl(kubeconfig, 'get', 'node', 'node-0', '-o', 'json')) as {
          status: { conditions: { type: string; status: string; lastHeartbeatTime: string }[] };
        };
        const ready = node.status.conditions.find((c) => c.type === 'Ready');
        assert.equal(ready?.status, 'True');
        return Date.parse(ready?.lastHeartbeatTime ?? '');
      };
      const first = await heartbeat();
      const deadline = Date.now() + 10_000;
      while ((await heartbeat()) <= first) {
        assert.ok(Date.now() < deadline, 'the heartbeat did not advance within 10 s');
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    });
  });

  test('a rolling update replaces every pod with the new template', async () => {
    await withCluster(false, async (cluster, kubeconfig) => {
      await kubectl(kubeconfig, 'create', '-f', join(demo, 'deployment.yaml'));
      const before = await waitForPods(cluster, readyCount(3), '3 ready pods');
      const oldHash = before[0]?.metadata?.labels?.['pod-template-hash'];
      await kubectl(kubeconfig, 'set', 'env', 'deployment/exampleservice', 'VERSION=2');
      const after = await waitForPods(
        cluster,
        (pods) =>
          readyCount(3)(pods) && pods.every((pod) => pod.metadata?.labels?.['pod-template-hash'] !== oldHash),
        '3 ready pods of the new template',
      );
      assert.equal(after.length, 3);
    });
  });
});

describe('local cluster, dataplane mode', { skip: isRoot ? false : 'needs root and iproute2' }, () => {
  test('a client namespace reaches every pod by IP; scaling adds and removes namespaces; stop leaves nothing', async () => {
    const ip = new IpCommand();
    let prefix = '';
    const runPids: number[] = [];
    await withCluster(true, async (cluster, kubeconfig) => {
      const dataplane = cluster.dataplane;
      const client = cluster.client;
      assert.ok(dataplane !== undefined && client !== undefined);
      prefix = dataplane.prefix;
      await kubectl(kubeconfig, 'create', '-f', join(demo, 'deployment.yaml'), '-f', join(demo, 'pod.yaml'));
      const pods = await waitForPods(cluster, readyCount(4), '4 ready pods');
      assertPlacement(cluster, pods);
      for (const pod of pods) {
        const { stdout } = await ip.exec(client.namespace, 'curl', [
          '-s',
          '--max-time',
          '5',
          `http://${pod.status?.podIP}/`,
        ]);
        assert.equal(stdout, `<p>The host is ${pod.metadata?.name}</p>\n`);
      }
      const podNamespaces = async () => (await ip.listNamespaces(`${prefix}pod-`)).length;
      assert.equal(await podNamespaces(), 4);
      await kubectl(kubeconfig, 'scale', 'deployment', 'exampleservice', '--replicas=10');
      await waitForPods(cluster, readyCount(11), '11 ready pods');
      assert.equal(await podNamespaces(), 11);
      await kubectl(kubeconfig, 'scale', 'deployment', 'exampleservice', '--replicas=2');
      await waitForPods(cluster, readyCount(3), '3 ready pods after scaling down');
      assert.equal(await podNamespaces(), 3);
      // The processes of this run only: other suites may run pod servers of the same name meanwhile.
      for (const namespace of await ip.listNamespaces(prefix)) {
        const { stdout } = await execFileAsync('ip', ['netns', 'pids', namespace]);
        runPids.push(
          ...stdout
            .split('\n')
            .filter((line) => line.trim() !== '')
            .map(Number),
        );
      }
      assert.ok(runPids.length >= 3, `pod servers found: ${runPids.join(' ')}`);
    });
    assert.notEqual(prefix, '');
    assert.deepEqual(await ip.listNamespaces(prefix), [], 'no namespace of the run remains');
    const alive = runPids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    assert.deepEqual(alive, [], 'no pod server of the run remains');
  });

  test('readiness probes run from the node namespace: httpGet on a named port passes, tcpSocket on a closed port fails', async () => {
    await withCluster(true, async (cluster, kubeconfig) => {
      const pod = (name: string, probe: object) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'default' },
        spec: {
          containers: [
            {
              name: 'web',
              image: 'demo',
              ports: [{ name: 'http', containerPort: 80 }],
              readinessProbe: { ...probe, periodSeconds: 1, failureThreshold: 1 },
            },
          ],
        },
      });
      const manifestDir = await mkdtemp(join(tmpdir(), 'portico-probe-pods-'));
      const httpManifest = join(manifestDir, 'http.json');
      const closedManifest = join(manifestDir, 'closed.json');
      await writeFile(
        httpManifest,
        JSON.stringify(pod('probed-http', { httpGet: { port: 'http', path: '/healthz' } })),
      );
      await writeFile(closedManifest, JSON.stringify(pod('probed-closed', { tcpSocket: { port: 81 } })));
      try {
        await kubectl(kubeconfig, 'create', '-f', httpManifest, '-f', closedManifest);
        const pods = await waitForPods(
          cluster,
          (current) => current.some((p) => p.metadata?.name === 'probed-http' && isReady(p)),
          'probed-http to turn ready',
        );
        // The closed port has had as many probe periods as the open one took to pass, and more.
        await new Promise((resolve) => setTimeout(resolve, 2_500));
        const closed = cluster.pods.get('default/probed-closed');
        assert.equal(closed?.status?.phase, 'Running');
        assert.ok(closed?.status?.podIP, 'the unready pod still has its IP');
        assert.equal(isReady(closed), false);
        assert.ok(pods.length >= 1);
      } finally {
        await rm(manifestDir, { recursive: true, force: true });
      }
    });
  });
});
