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
