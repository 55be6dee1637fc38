/**
 * What is internal to the node agent, on the real kernel: a dataplane local cluster with the
 * endpoint controllers in-process (so a test can time a slice update from its informer) and one
 * `portico-agent` per node namespace with short sync periods, driven from a client namespace on
 * the LAN. Here: the IPVS fallback line, programming latency after a pod deletion, UDP conntrack
 * across an agent restart, /healthz and /metrics, recovery from a flush by another process, and
 * `--cleanup`. What a user sees of Services (the seeds' demo, NodePort, external and ingress IPs,
 * REJECT, affinity, externalTrafficPolicy Local, source ranges) is in the shared scenarios
 * (e2e/scenarios, run by e2e/scenarios/local.test.ts and the kind suite).
 *
 * The tests run once per proxy mode, each mode on a cluster of its own (a fresh cluster is quicker
 * and surer than undoing one mode's rules for the next); within a mode they share the cluster and
 * run in order. `--mode ipvs` falls back to iptables on a kernel without IPVS, so there it checks
 * the fallback line and then the iptables dataplane.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KubeConfig, type V1EndpointSlice, type V1Pod } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { detectIpvsSupport } from '../../agent/ipvs/detect.ts';
import {
  createEndpointControllers,
  type EndpointControllers,
} from '../../controllers/endpoint-controllers.ts';
import { allEndpointInformers } from '../../controllers/endpoint-informers.ts';
import { createLogger } from '../../controllers/runtime/logging.ts';
import { type ApiServer, startApiServer } from '../apiserver/index.ts';
import { LocalCluster } from './cluster.ts';
import { type ClientNetwork, defaultIpPath, newRunId } from './netns.ts';
import { type NodeAgents, startNodeAgents } from './node-agents.ts';
import { KubeRest } from './rest.ts';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const demo = new URL('../../examples/clusterip-demo/', import.meta.url).pathname;
const agentScript = new URL('../../agent/portico-agent.ts', import.meta.url).pathname;
const SYNC_PERIOD_MS = 3_000;
const NODE_IPS = ['198.18.255.1', '198.18.255.2'];

interface CommandOutcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function inNamespace(namespace: string, program: string, args: readonly string[]): Promise<CommandOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      defaultIpPath,
      ['netns', 'exec', namespace, program, ...args],
      { timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout: String(stdout), stderr: String(stderr), ms: performance.now() - started });
      },
    );
  });
}

/** curl from a namespace; exit code 7 is "Connection refused", 28 a timeout. */
function curl(namespace: string, url: string, maxTimeSeconds = 2): Promise<CommandOutcome> {
  return inNamespace(namespace, 'curl', ['-s', '-S', '--max-time', String(maxTimeSeconds), url]);
}

/** Sends one datagram to the UDP Service from a fixed source port (one conntrack flow) and prints the answer. */
const udpClient = `
const socket = require('node:dgram').createSocket('udp4');
setTimeout(() => { console.log('timeout'); process.exit(0); }, 1500);
socket.on('message', (message) => { console.log(message.toString()); process.exit(0); });
socket.bind(40000, () => socket.send('who', 53, '198.19.0.16'));
`;

function hostOf(body: string): string {
  return /<p>The host is (\S+)<\/p>/.exec(body)?.[1] ?? `(no host in ${JSON.stringify(body)})`;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Curls `url` `count` times and returns the hosts that answered; every request must succeed. */
async function hostsBehind(namespace: string, url: string, count: number): Promise<string[]> {
  const hosts: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const outcome = await curl(namespace, url);
    assert.equal(outcome.code, 0, `curl ${url} #${i}: ${outcome.stderr}`);
    hosts.push(hostOf(outcome.stdout));
  }
  return hosts;
}

function service(name: string, spec: Record<string, unknown>): unknown {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec };
}

/** The agents' `--mode` and the mode whose rules the scenarios read back. */
interface ModeUnderTest {
  readonly flag: 'iptables' | 'nftables' | 'ipvs';
  readonly rules: 'iptables' | 'nftables';
}

const ipvsSupport = await detectIpvsSupport();
const MODES: readonly ModeUnderTest[] = [
  { flag: 'iptables', rules: 'iptables' },
  { flag: 'nftables', rules: 'nftables' },
  // On a kernel with IPVS the agents would run IPVS, whose rules these scenarios do not read.
  ...(ipvsSupport.supported ? [] : [{ flag: 'ipvs', rules: 'iptables' } as const]),
];

/** Everything Portico wrote in a node's namespace that the scenarios look at, as text. */
async function dumpRules(mode: ModeUnderTest, namespace: string): Promise<string> {
  if (mode.rules === 'nftables') {
    const listed = await inNamespace(namespace, 'nft', ['list', 'table', 'ip', 'portico']);
    return listed.stdout;
  }
  const [nat, filter] = await Promise.all([
    inNamespace(namespace, 'iptables-save', ['-t', 'nat']),
    inNamespace(namespace, 'iptables-save', ['-t', 'filter']),
  ]);
  return nat.stdout + filter.stdout;
}

/**
 * Whether the rules send traffic to `ip`:`port`: iptables and IPVS write `198.18.0.3:80`, nftables
 * `198.18.0.3:80` in a rule or `198.18.0.3 . 80` in a map element.
 */
function namesEndpoint(rules: string, ip: string, port: number): boolean {
  const address = ip.replaceAll('.', '\\.');
  return new RegExp(`(?<![\\d.])${address}(?::| \\. )${port}(?!\\d)`).test(rules);
}

for (const mode of MODES) dataplaneScenarios(mode);

function dataplaneScenarios(mode: ModeUnderTest): void {
  describe(`portico-agent --mode ${mode.flag} on the local cluster`, {
    skip: isRoot ? false : 'needs root and iproute2',
  }, () => {
    let dataDir = '';
    let server: ApiServer | undefined;
    let cluster: LocalCluster | undefined;
    let controllers: EndpointControllers | undefined;
    let agents: NodeAgents | undefined;
    let rest: KubeRest | undefined;
    let client: ClientNetwork;
    const nodeNamespaces: string[] = [];

    /** Stops everything started so far; runs from a failed `before` and again from `after`. */
    async function teardown(): Promise<void> {
      const started = { agents, controllers, rest, cluster, server, dataDir };
      agents = controllers = rest = cluster = server = undefined;
      dataDir = '';
      try {
        await started.agents?.stop();
        if (started.controllers !== undefined) {
          const { controllers: running, informers } = started.controllers;
          await Promise.all(running.map((controller) => controller.stop(2_000)));
          await Promise.all(allEndpointInformers(informers).map((informer) => informer.stop()));
        }
        started.rest?.close();
      } finally {
        // The namespaces and the API server go even when stopping a process failed.
        await started.cluster?.stop();
        await started.server?.close();
        if (started.dataDir !== '') await rm(started.dataDir, { recursive: true, force: true });
      }
    }

    before(async () => {
      try {
        dataDir = await mkdtemp(join(tmpdir(), 'portico-agent-e2e-'));
        server = await startApiServer({ dataDir });
        const kubeConfig = new KubeConfig();
        kubeConfig.loadFromFile(server.kubeconfigPath);
        const logger = createLogger({ level: 'silent' });
        cluster = await LocalCluster.start({
          kubeConfig,
          logger,
          dataplane: true,
          runId: newRunId(),
          heartbeatMs: 2_000,
        });
        assert.ok(cluster.dataplane !== undefined && cluster.client !== undefined);
        client = cluster.client;
        for (const node of cluster.dataplane.nodes) nodeNamespaces.push(node.namespace);
        controllers = createEndpointControllers(kubeConfig, logger);
        const informers = allEndpointInformers(controllers.informers);
        for (const informer of informers) informer.start();
        await Promise.all(informers.map((informer) => informer.waitForSync(AbortSignal.timeout(15_000))));
        for (const controller of controllers.controllers) controller.run();
        agents = await startNodeAgents({
          nodes: cluster.dataplane.nodes,
          apiServerUrl: server.url,
          kubeconfigPath: server.kubeconfigPath,
          agentArgs: [
            '--mode',
            mode.flag,
            '--cluster-cidr',
            cluster.nodes.map((node) => node.podCidr).join(','),
            '--sync-period',
            `${SYNC_PERIOD_MS}ms`,
            '--min-sync-period',
            '250ms',
            '--log-level',
            // info keeps the fallback line among the last lines `agents.log` returns.
            mode.flag === 'ipvs' ? 'info' : 'debug',
          ],
        });
        rest = new KubeRest(kubeConfig);
        for (const file of ['deployment.yaml', 'pod.yaml']) {
          const object = parse(await readFile(join(demo, file), 'utf8')) as { kind: string };
          const path =
            object.kind === 'Deployment'
              ? '/apis/apps/v1/namespaces/default/deployments'
              : '/api/v1/namespaces/default/pods';
          await rest.create(path, object);
        }
        const seedService = parse(await readFile(join(demo, 'service.yaml'), 'utf8')) as {
          spec: Record<string, unknown>;
        };
        // No allocating webhook runs here, so the test picks the ClusterIP an allocator would.
        seedService.spec['clusterIP'] = '198.19.0.10';
        await rest.create('/api/v1/namespaces/default/services', seedService);
        const pods = cluster.pods;
        await waitFor('4 ready demo pods', async () =>
          pods
            .listInNamespace('default')
            .filter((pod) => pod.metadata?.labels?.['example'] === 'forservice' && isReady(pod)).length === 4
            ? true
            : undefined,
        );
      } catch (error) {
        await teardown();
        throw error;
      }
    });

    after(teardown);

    const demoPods = () =>
      (cluster?.pods.listInNamespace('default') ?? []).filter(
        (pod) =>
          pod.metadata?.labels?.['example'] === 'forservice' &&
          isReady(pod) &&
          pod.metadata.deletionTimestamp === undefined,
      );

    if (mode.flag === 'ipvs')
      test('without IPVS in the kernel, every agent logs one fallback line and runs iptables mode', async () => {
        for (const [index, node] of nodeNamespaces.entries()) {
          // The cluster can be ready before an agent has started (loading it takes a second or more).
          const log = await waitFor(`node-${index}'s agent to start`, async () => {
            const text = await agents!.log(index);
            return text.includes('portico-agent started') ? text : undefined;
          });
          const fallback = log
            .split('\n')
            .filter((line) => line.includes('falling back to the iptables proxy mode'));
          assert.equal(fallback.length, 1, `node-${index}'s log: ${JSON.stringify(log)}`);
          assert.match(fallback[0]!, /IPVS is not supported by this kernel/);
          const running = await inNamespace(node, 'curl', [
            '-s',
            '--max-time',
            '2',
            'http://127.0.0.1:10249/proxyMode',
          ]);
          assert.equal(running.stdout, 'iptables');
        }
      });

    test("a deleted pod's endpoint rules go within 1 s of its slice update", async (t) => {
      const ips = demoPods().map((pod) => pod.status?.podIP ?? '-');
      await waitFor('rules for the 4 pods', async () => {
        const rules = await dumpRules(mode, nodeNamespaces[0]!);
        return ips.every((ip) => namesEndpoint(rules, ip, 80)) ? true : undefined;
      });
      const victim = demoPods().find((pod) => pod.metadata?.name !== 'examplepod');
      assert.ok(victim?.status?.podIP !== undefined);
      const victimIp = victim.status.podIP;
      let sliceUpdatedAt = 0;
      const slices = controllers!.informers.endpointSlices;
      const servesVictim = (slice: V1EndpointSlice) =>
        (slice.endpoints ?? []).some(
          (endpoint) => endpoint.addresses.includes(victimIp) && endpoint.conditions?.ready !== false,
        );
      slices.addEventHandler({
        onUpdate: (_old, slice) => {
          if (
            sliceUpdatedAt === 0 &&
            slice.metadata?.labels?.['kubernetes.io/service-name'] === 'clusteripservice' &&
            !servesVictim(slice)
          )
            sliceUpdatedAt = performance.now();
        },
      });
      await rest!.delete(`/api/v1/namespaces/default/pods/${victim.metadata?.name}`, {
        gracePeriodSeconds: 0,
      });
      await waitFor('the slice update', async () => (sliceUpdatedAt !== 0 ? true : undefined));
      const goneAt = await waitFor(
        'the endpoint rules to go',
        async () => {
          const rules = await dumpRules(mode, nodeNamespaces[0]!);
          return namesEndpoint(rules, victimIp, 80) ? undefined : performance.now();
        },
        5_000,
      );
      assert.ok(
        goneAt - sliceUpdatedAt <= 1_000,
        `rules removed ${Math.round(goneAt - sliceUpdatedAt)} ms after the slice update`,
      );
      t.diagnostic(`endpoint rules removed ${Math.round(goneAt - sliceUpdatedAt)} ms after the slice update`);
    });

    test('UDP: an agent restart keeps live flows; the flows of a removed endpoint are deleted so the client moves on', async () => {
      const createUdpPod = (name: string, nodeName: string) =>
        rest!.create('/api/v1/namespaces/default/pods', {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, namespace: 'default', labels: { app: 'udp' } },
          spec: {
            nodeName,
            containers: [
              { name: 'dns', image: 'demo', ports: [{ name: 'dns', containerPort: 5353, protocol: 'UDP' }] },
            ],
          },
        });
      // The first backend runs on the other node: a flow masqueraded out of lan0 outlives its
      // backend unless the agent deletes it (a local backend's veth going away would flush it).
      await createUdpPod('udp-b', 'node-1');
      await rest!.create(
        '/api/v1/namespaces/default/services',
        service('udp', {
          clusterIP: '198.19.0.16',
          selector: { app: 'udp' },
          ports: [{ name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 }],
        }),
      );
      const node = nodeNamespaces[0]!;
      const podIp = (name: string) => cluster!.pods.get(`default/${name}`)?.status?.podIP;
      const rulesFor = (names: readonly string[]) =>
        waitFor(`rules for ${names.join(' and ')}`, async () => {
          const ips = names.map(podIp);
          const rules = await dumpRules(mode, node);
          return ips.every((ip) => ip !== undefined && namesEndpoint(rules, ip, 5353)) ? true : undefined;
        });
      await rulesFor(['udp-b']);
      const ask = async () =>
        (await inNamespace(client.namespace, process.execPath, ['-e', udpClient])).stdout.trim();
      const first: string = await ask();
      assert.equal(first, 'udp-b');
      const firstIp = podIp(first)!;
      const flowsTo = async (ip: string) =>
        (await inNamespace(node, 'conntrack', ['-L', '-p', 'udp', '--orig-port-dst', '53'])).stdout
          .split('\n')
          .filter((line) => line.includes(`src=${ip} `)).length;
      assert.equal(await flowsTo(firstIp), 1, 'the flow is tracked on node-0');

      await agents!.restartAgent(0);
      await waitFor('the restarted agent to sync', async () => {
        const metrics = await inNamespace(node, 'curl', [
          '-s',
          '--max-time',
          '1',
          'http://127.0.0.1:10249/metrics',
        ]);
        return /portico_proxy_sync_proxy_rules_duration_seconds_count\{sync="full"\} [1-9]/.test(
          metrics.stdout,
        )
          ? true
          : undefined;
      });
      assert.equal(await flowsTo(firstIp), 1, 'the restart did not flush the live UDP flow');
      assert.equal(await ask(), first, 'the client keeps its backend across the restart');

      await createUdpPod('udp-a', 'node-0');
      await rulesFor(['udp-a', 'udp-b']);
      assert.equal(await ask(), first, 'an established UDP flow stays on its backend');
      await rest!.delete(`/api/v1/namespaces/default/pods/${first}`, { gracePeriodSeconds: 0 });
      await waitFor(
        'the stale flow to be deleted',
        async () => ((await flowsTo(firstIp)) === 0 ? true : undefined),
        10_000,
      );
      const next = await ask();
      assert.equal(next, 'udp-a', 'the same client port reaches the remaining pod');
    });

    test('/healthz and /metrics report synced rules and the network programming latency', async (t) => {
      const healthz = await curl(client.namespace, `http://${NODE_IPS[0]}:10256/healthz`);
      assert.equal(healthz.code, 0);
      assert.equal((JSON.parse(healthz.stdout) as { nodeEligible: boolean }).nodeEligible, true);
      // node-1's agent has run since before the demo existed (node-0's was restarted by the UDP test),
      // so it has seen every slice change and measured its programming latency.
      const metrics = await inNamespace(nodeNamespaces[1]!, 'curl', [
        '-s',
        '--max-time',
        '2',
        'http://127.0.0.1:10249/metrics',
      ]);
      const sample = (name: string) =>
        Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(metrics.stdout)?.[1] ?? 'NaN');
      assert.ok(
        sample('portico_proxy_network_programming_duration_seconds_count') > 0,
        metrics.stdout.slice(0, 400),
      );
      assert.ok(sample('portico_proxy_sync_proxy_rules_endpoint_changes_total') > 0);
      const latencyCount = sample('portico_proxy_network_programming_duration_seconds_count');
      const latencySum = sample('portico_proxy_network_programming_duration_seconds_sum');
      t.diagnostic(
        `network programming latency: ${latencyCount} samples, mean ${((latencySum / latencyCount) * 1000).toFixed(0)} ms`,
      );
      assert.match(
        metrics.stdout,
        /portico_proxy_sync_proxy_rules_duration_seconds_count\{sync="partial"\} [1-9]/,
      );
      if (mode.rules === 'iptables')
        assert.match(
          metrics.stdout,
          /portico_proxy_sync_proxy_rules_iptables_total\{table="nat",family="IPv4"\} [1-9]/,
        );
    });

    test(`after another process ${mode.rules === 'nftables' ? 'flushes the portico table' : 'flushes the nat table'}, the rules are back within one sync period`, async (t) => {
      const node = nodeNamespaces[0]!;
      const flushed =
        mode.rules === 'nftables'
          ? await inNamespace(node, 'nft', ['flush', 'table', 'ip', 'portico'])
          : await inNamespace(node, 'sh', ['-c', 'iptables -t nat -F && iptables -t nat -X']);
      assert.equal(flushed.code, 0, flushed.stderr);
      const flushedAt = performance.now();
      const restored = (rules: string) =>
        mode.rules === 'nftables'
          ? rules.includes('198.19.0.10 . tcp . 8080') && rules.includes('vmap @service-ips')
          : rules.includes('198.19.0.10/32') && rules.includes('-j PORTICO-SERVICES');
      const backAt = await waitFor(
        'the rules to come back',
        async () => (restored(await dumpRules(mode, node)) ? performance.now() : undefined),
        SYNC_PERIOD_MS * 3,
      );
      assert.ok(
        backAt - flushedAt <= SYNC_PERIOD_MS + 500,
        `rules back after ${Math.round(backAt - flushedAt)} ms`,
      );
      t.diagnostic(`rules back ${Math.round(backAt - flushedAt)} ms after the flush`);
      const hosts = await hostsBehind(client.namespace, 'http://198.19.0.10:8080/', 4);
      assert.equal(hosts.length, 4);
    });

    const cleanup = (node: string) =>
      inNamespace(node, process.execPath, [
        agentScript,
        '--cleanup',
        '--mode',
        mode.flag,
        '--log-level',
        'silent',
      ]);

    if (mode.rules === 'iptables')
      test(`portico-agent --cleanup --mode ${mode.flag} removes every Portico chain and nothing else`, async () => {
        const node = nodeNamespaces[0]!;
        await agents!.stopAgent(0);
        const foreign = await inNamespace(node, 'sh', [
          '-c',
          'iptables -t nat -N FOREIGN-TEST && iptables -t nat -A PREROUTING -j FOREIGN-TEST && iptables -t filter -N FOREIGN-TEST && iptables -A INPUT -j FOREIGN-TEST',
        ]);
        assert.equal(foreign.code, 0, foreign.stderr);
        const rules = async () => {
          const lines: string[] = [];
          for (const binary of ['iptables', 'ip6tables'])
            for (const table of ['nat', 'filter']) {
              const listed = await inNamespace(node, binary, ['-w', '5', '-t', table, '-S']);
              assert.equal(listed.code, 0, listed.stderr);
              lines.push(
                ...listed.stdout
                  .split('\n')
                  .filter(Boolean)
                  .map((line) => `${binary} ${table} ${line}`),
              );
            }
          return lines;
        };
        const before = await rules();
        assert.ok(
          before.some((line) => line.includes('PORTICO-')),
          'the agent had written rules',
        );
        const cleaned = await cleanup(node);
        assert.equal(cleaned.code, 0, cleaned.stderr);
        const afterCleanup = await rules();
        assert.deepEqual(
          afterCleanup,
          before.filter((line) => !line.includes('PORTICO-')),
        );
        assert.ok(afterCleanup.some((line) => line.includes('FOREIGN-TEST')));
      });
    else
      test('portico-agent --cleanup --mode nftables removes the portico table and nothing else', async () => {
        const node = nodeNamespaces[0]!;
        await agents!.stopAgent(0);
        const foreign = await inNamespace(node, 'nft', [
          'add table ip foreign-test ; add chain ip foreign-test input { type filter hook input priority 10 ; } ; add rule ip foreign-test input tcp dport 9 counter accept',
        ]);
        assert.equal(foreign.code, 0, foreign.stderr);
        const iptablesBefore = await inNamespace(node, 'iptables-save', []);
        const tables = async () => {
          const listed = await inNamespace(node, 'nft', ['list', 'tables']);
          assert.equal(listed.code, 0, listed.stderr);
          return listed.stdout.split('\n').filter(Boolean);
        };
        const foreignTable = async () =>
          (await inNamespace(node, 'nft', ['list', 'table', 'ip', 'foreign-test'])).stdout;
        const tablesBefore = await tables();
        const foreignBefore = await foreignTable();
        assert.ok(
          tablesBefore.includes('table ip portico'),
          `the agent had written its table: ${tablesBefore.join(', ')}`,
        );
        const cleaned = await cleanup(node);
        assert.equal(cleaned.code, 0, cleaned.stderr);
        assert.deepEqual(
          await tables(),
          tablesBefore.filter((line) => line !== 'table ip portico' && line !== 'table ip6 portico'),
        );
        assert.equal(await foreignTable(), foreignBefore);
        assert.equal(
          (await inNamespace(node, 'iptables-save', [])).stdout.replace(/^#.*\n/gm, ''),
          iptablesBefore.stdout.replace(/^#.*\n/gm, ''),
        );
      });
  });
}
