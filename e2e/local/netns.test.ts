import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  cleanupStale,
  clientLanAddress,
  hostVethName,
  type IpCommand,
  NetnsDataplane,
  newRunId,
  nodeLanAddress,
  nodePodCidr,
  nodePodGateway,
  type PodServerProcess,
  planNodePodCidrs,
  podCidrGateway,
  runNamespacePrefix,
} from './netns.ts';
import { NamespaceProbeTransport } from './probes.ts';

const execFileAsync = promisify(execFile);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

describe('address plan', () => {
  test('node i owns 198.18.i.0/24 with gateway .1 and LAN address 198.18.255.(i+1)', () => {
    assert.equal(nodePodCidr(0), '198.18.0.0/24');
    assert.equal(nodePodCidr(7), '198.18.7.0/24');
    assert.equal(nodePodGateway(7), '198.18.7.1');
    assert.equal(nodeLanAddress(0), '198.18.255.1');
    assert.equal(nodeLanAddress(249), '198.18.255.250');
    assert.equal(clientLanAddress(0), '198.18.255.254');
  });

  test('node indexes that would collide with the LAN or clients are rejected', () => {
    assert.throws(() => nodePodCidr(250), /node index: Invalid value: 250: must be an integer from 0 to 249/);
    assert.throws(() => nodeLanAddress(-1), /Invalid value: -1/);
    assert.throws(() => clientLanAddress(4), /client index: Invalid value: 4/);
  });

  test('by default node pod CIDRs are the /24s of 198.18.0.0/16, the same in both modes', () => {
    const plan = { podCidr: '198.18.0.0/16', nodeCidrMaskSize: 24 };
    assert.deepEqual(planNodePodCidrs(3, plan, true), ['198.18.0.0/24', '198.18.1.0/24', '198.18.2.0/24']);
    assert.deepEqual(planNodePodCidrs(3, plan, false), planNodePodCidrs(3, plan, true));
    assert.equal(planNodePodCidrs(250, plan, true).at(-1), '198.18.249.0/24');
  });

  test('a wider per-node share: the gateway is .1 of each node CIDR', () => {
    const cidrs = planNodePodCidrs(15, { podCidr: '198.18.0.0/16', nodeCidrMaskSize: 20 }, true);
    assert.deepEqual(cidrs.slice(0, 2), ['198.18.0.0/20', '198.18.16.0/20']);
    assert.equal(cidrs.at(-1), '198.18.224.0/20');
    assert.equal(podCidrGateway('198.18.16.0/20'), '198.18.16.1');
  });

  test('dataplane: node CIDRs must stay below the LAN 198.18.255.0/24', () => {
    // The 16th /20 (198.18.240.0/20) would hold the LAN.
    assert.throws(
      () => planNodePodCidrs(16, { podCidr: '198.18.0.0/16', nodeCidrMaskSize: 20 }, true),
      /^Error: --nodes: Invalid value: 16: --pod-cidr 198.18.0.0\/16 with --node-cidr-mask-size 20 holds 15 node pod CIDRs below the LAN 198.18.255.0\/24; use a wider --pod-cidr or a larger --node-cidr-mask-size$/,
    );
    assert.throws(
      () => planNodePodCidrs(1, { podCidr: '198.18.255.0/24', nodeCidrMaskSize: 25 }, true),
      /--nodes: Invalid value: 1: .* holds 0 node pod CIDRs below the LAN/,
    );
  });

  test('dataplane: a pod range outside 198.18.0.0/16 is refused, control-plane mode takes it', () => {
    const wide = { podCidr: '10.0.0.0/8', nodeCidrMaskSize: 16 };
    assert.throws(
      () => planNodePodCidrs(2, wide, true),
      /--pod-cidr: Invalid value: "10.0.0.0\/8": the dataplane configures and routes pod addresses, so the range must be inside 198.18.0.0\/16 \(or run with --no-dataplane/,
    );
    assert.throws(
      () => planNodePodCidrs(2, { podCidr: '198.18.0.0/15', nodeCidrMaskSize: 24 }, true),
      /--pod-cidr: Invalid value: "198.18.0.0\/15"/,
    );
    assert.deepEqual(planNodePodCidrs(2, wide, false), ['10.0.0.0/16', '10.1.0.0/16']);
  });

  test('the node count is bounded by the range and by the LAN addresses nodes take', () => {
    assert.throws(
      () => planNodePodCidrs(17, { podCidr: '10.0.0.0/16', nodeCidrMaskSize: 20 }, false),
      /^Error: --nodes: Invalid value: 17: --pod-cidr 10.0.0.0\/16 with --node-cidr-mask-size 20 holds 16 node pod CIDRs; use a wider/,
    );
    assert.throws(
      () => planNodePodCidrs(251, { podCidr: '10.0.0.0/8', nodeCidrMaskSize: 16 }, false),
      /--nodes: Invalid value: 251: must be an integer from 1 to 250 \(node InternalIPs come from the LAN 198.18.255.0\/24\)/,
    );
    assert.throws(
      () => planNodePodCidrs(0, { podCidr: '10.0.0.0/8', nodeCidrMaskSize: 16 }, false),
      /--nodes: Invalid value: 0/,
    );
  });

  test('host veth names fit IFNAMSIZ and differ per pod', () => {
    const a = hostVethName('default/web-1');
    const b = hostVethName('default/web-2');
    assert.ok(a.length <= 15, a);
    assert.notEqual(a, b);
  });

  test('run ids and cleanup prefixes are confined to portico- names', async () => {
    assert.equal(runNamespacePrefix('abc123'), 'portico-abc123-');
    assert.throws(() => runNamespacePrefix('Bad_Id'), /runId: Invalid value: "Bad_Id"/);
    await assert.rejects(cleanupStale('kube-'), /prefix: Invalid value: "kube-": must start with "portico-"/);
  });
});

async function hostVethCount(): Promise<number> {
  const { stdout } = await execFileAsync('/usr/sbin/ip', ['-o', 'link', 'show', 'type', 'veth']);
  return stdout.split('\n').filter((line) => line.trim() !== '').length;
}

async function processCommandLine(pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

/** Fetches a URL from inside the client namespace, with Node 24 itself so no curl is needed. */
async function fetchFromNamespace(ip: IpCommand, namespace: string, url: string): Promise<string> {
  const script = `const r = await fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }); process.stdout.write(await r.text());`;
  const { stdout } = await ip.exec(namespace, process.execPath, ['--input-type=module', '-e', script]);
  return stdout;
}

/** Sends one UDP datagram from inside a namespace and returns the reply. */
async function udpFromNamespace(
  ip: IpCommand,
  namespace: string,
  host: string,
  port: number,
): Promise<string> {
  const script = `import { createSocket } from 'node:dgram';
const s = createSocket('udp4');
const t = setTimeout(() => { process.stderr.write('timeout'); process.exit(1); }, 5000);
s.on('message', (m) => { process.stdout.write(m.toString()); clearTimeout(t); s.close(); });
s.send('hello', ${port}, ${JSON.stringify(host)});`;
  const { stdout } = await ip.exec(namespace, process.execPath, ['--input-type=module', '-e', script]);
  return stdout;
}

describe('network namespace dataplane', { skip: isRoot ? false : 'needs root and iproute2' }, () => {
  test('2 nodes x 2 pods: a LAN client reaches every pod by IP, and cleanup leaves nothing behind', async () => {
    const dataplane = new NetnsDataplane({ runId: newRunId() });
    const ip = dataplane.ip;
    const vethsBefore = await hostVethCount();
    const servers: PodServerProcess[] = [];
    const pods: { name: string; ip: string }[] = [];
    try {
      for (const nodeIndex of [0, 1]) await dataplane.addNode(nodeIndex);
      const client = await dataplane.addClient(0);
      for (const nodeIndex of [0, 1]) {
        for (const podNumber of [2, 3]) {
          const name = `web-${nodeIndex}-${podNumber}`;
          const podIp = `198.18.${nodeIndex}.${podNumber}`;
          await dataplane.addPod(nodeIndex, `default/${name}`, podIp);
          servers.push(
            await dataplane.startPodServer(`default/${name}`, name, [
              { name: 'http', port: 80, protocol: 'TCP' },
              { name: 'echo', port: 5353, protocol: 'UDP' },
            ]),
          );
          pods.push({ name, ip: podIp });
        }
      }
      assert.equal(await hostVethCount(), vethsBefore, 'no veth was created in the host namespace');

      for (const pod of pods) {
        assert.equal(
          await fetchFromNamespace(ip, client.namespace, `http://${pod.ip}/`),
          `<p>The host is ${pod.name}</p>\n`,
        );
        assert.equal(await udpFromNamespace(ip, client.namespace, pod.ip, 5353), pod.name);
      }
      const prober = new NamespaceProbeTransport(dataplane.nodes[1]?.namespace ?? '');
      try {
        const healthz = await prober.probe(
          { kind: 'http', port: 80, path: '/healthz', scheme: 'http' },
          '198.18.1.3',
          2000,
        );
        assert.deepEqual(healthz, { success: true, message: 'HTTP probe returned 200' });
        const closed = await prober.probe({ kind: 'tcp', port: 81 }, '198.18.0.3', 2000);
        assert.equal(closed.success, false, 'nothing listens on port 81');
      } finally {
        await prober.close();
      }
      // Pod to pod across nodes goes pod -> node 0 -> LAN -> node 1 -> pod.
      const [firstPod, , , lastPod] = dataplane.pods;
      assert.ok(firstPod !== undefined && lastPod !== undefined);
      assert.equal(
        await fetchFromNamespace(ip, firstPod.namespace, `http://${lastPod.podIp}/`),
        '<p>The host is web-1-3</p>\n',
      );

      await dataplane.removePod('default/web-0-2');
      await assert.rejects(fetchFromNamespace(ip, client.namespace, 'http://198.18.0.2/'));
      assert.equal(await processCommandLine(servers[0]?.pid ?? -1), undefined, 'removed pod has no process');
    } finally {
      await dataplane.destroy();
    }
    assert.deepEqual(await ip.listNamespaces(dataplane.prefix), []);
    assert.equal(await hostVethCount(), vethsBefore);
    for (const server of servers) {
      assert.equal(await processCommandLine(server.pid), undefined, `pod server ${server.pid} is gone`);
    }
  });

  test('cleanupStale removes the namespaces and processes a crashed run left behind', async () => {
    const crashed = new NetnsDataplane({ runId: newRunId() });
    let pid = -1;
    try {
      await crashed.addNode(0);
      await crashed.addPod(0, 'default/orphan', '198.18.0.9');
      pid = (await crashed.startPodServer('default/orphan', 'orphan', [{ port: 8080, protocol: 'TCP' }])).pid;
      const removed = await cleanupStale(crashed.prefix, { graceMs: 1_000 });
      assert.equal(removed.length, 3, `lan, node and pod namespaces: ${removed.join(', ')}`);
      assert.deepEqual(await crashed.ip.listNamespaces(crashed.prefix), []);
      assert.equal(await processCommandLine(pid), undefined);
    } finally {
      await crashed.destroy();
    }
  });
});
