/**
 * Benchmark of the nftables proxier, with the iptables proxier side by side for first-packet
 * latency. For each size (default 1,000 / 10,000 / 30,000 Services × 10 endpoints):
 * - render: build the desired state and render a full sync;
 * - fullSync: `nft -f` of that script into a fresh network namespace;
 * - partialSync: render + `nft -f` after one endpoint of one Service changed (median of 5);
 * - with `--latency`: time to connect (TCP handshake) from a client namespace to the last
 *   Service's cluster IP through the node namespace to a backend namespace, p50/p99 over 1,000
 *   connections, first with the nftables rules, then with the iptables rules of the same state.
 * Needs root. Every address is in 198.18.0.0/15 (cluster IPs 198.19.0.0/16) and lives only in
 * the namespaces created here, which are deleted at the end, also on failure.
 *
 * Usage: node bench/proxier-nftables.ts [--latency] [--iptables-max=10000] [serviceCounts, comma-separated]
 * (the iptables side of the latency comparison runs only up to --iptables-max Services).
 * Progress goes to stderr, the JSON to stdout.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { commandRunner, IptablesProxier } from '../agent/iptables/proxier.ts';
import { DEFAULT_IPTABLES_RENDER_OPTIONS } from '../agent/iptables/render.ts';
import { NftablesProxier } from '../agent/nftables/proxier.ts';
import { DEFAULT_NFTABLES_RENDER_OPTIONS, type NftablesRuleset } from '../agent/nftables/render.ts';
import { makeService, makeSlice } from '../agent/state/test-fixtures.ts';
import { ChangeTracker } from '../agent/state/tracker.ts';
import type { NodeInfo } from '../agent/state/types.ts';

const args = process.argv.slice(2);
const latency = args.includes('--latency');
// iptables-restore of the full ruleset takes minutes beyond 10,000 Services on the nf_tables
// backend; above this size only the nftables latency is measured.
const iptablesMaxServices = Number(
  args.find((arg) => arg.startsWith('--iptables-max='))?.slice('--iptables-max='.length) ?? '10000',
);
const counts = (args.find((arg) => !arg.startsWith('--')) ?? '1000,10000,30000').split(',').map(Number);
const endpointsPerService = 10;
const connections = 1000;
const NODE: NodeInfo = { name: 'bench-node', zone: '', addresses: ['198.18.1.2', '198.18.2.1'] };
const CLIENT_IP = '198.18.1.1';
const BACKEND_IPS = Array.from({ length: endpointsPerService }, (_, i) => `198.18.2.${10 + i}`);
const BACKEND_PORT = 8080;
const renderOptions = { clusterCIDRs: ['198.18.64.0/18'] };

function progress(message: string): void {
  process.stderr.write(`${new Date().toISOString()} ${message}\n`);
}

function serviceIP(index: number): string {
  return `198.19.${(index >> 8) & 255}.${index & 255}`;
}

/** Endpoint n of the cluster: 198.18.16.0–198.18.255.255, with the port telling apart wrap-arounds. */
function endpoint(n: number): { ip: string; port: number } {
  const pool = 240 * 256;
  const offset = n % pool;
  return { ip: `198.18.${16 + (offset >> 8)}.${offset & 255}`, port: BACKEND_PORT + Math.floor(n / pool) };
}

function sliceFor(index: number, count: number, generation: number) {
  const last = index === count - 1;
  const addresses = last
    ? BACKEND_IPS.map((ip) => ({ ip, port: BACKEND_PORT }))
    : Array.from({ length: endpointsPerService }, (_, i) =>
        endpoint(index * endpointsPerService + i + generation),
      );
  // One slice per port number: a slice has one port list.
  const byPort = new Map<number, string[]>();
  for (const address of addresses)
    byPort.set(address.port, [...(byPort.get(address.port) ?? []), address.ip]);
  return [...byPort].map(([port, ips]) =>
    makeSlice(
      `svc-${index}`,
      ips.map((ip) => ({ ip, node: 'other-node' })),
      { name: `svc-${index}-${port}`, ports: [{ name: 'http', port }] },
    ),
  );
}

function sh(...argv: string[]): void {
  execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Node, client and backend namespaces joined by veth pairs; the node routes between them. */
function createTopology(id: string) {
  const node = `portico-test-${id}-node`;
  const client = `portico-test-${id}-client`;
  const backend = `portico-test-${id}-backend`;
  const created: string[] = [];
  try {
    for (const namespace of [node, client, backend]) {
      sh('ip', 'netns', 'add', namespace);
      created.push(namespace);
      sh('ip', '-n', namespace, 'link', 'set', 'lo', 'up');
    }
    sh(
      'ip',
      '-n',
      node,
      'link',
      'add',
      'name',
      'to-client',
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      client,
    );
    sh(
      'ip',
      '-n',
      node,
      'link',
      'add',
      'name',
      'to-backend',
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      backend,
    );
    sh('ip', '-n', node, 'addr', 'add', '198.18.1.2/24', 'dev', 'to-client');
    sh('ip', '-n', node, 'addr', 'add', '198.18.2.1/24', 'dev', 'to-backend');
    sh('ip', '-n', client, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0');
    for (const ip of BACKEND_IPS) sh('ip', '-n', backend, 'addr', 'add', `${ip}/24`, 'dev', 'eth0');
    for (const [namespace, device] of [
      [node, 'to-client'],
      [node, 'to-backend'],
      [client, 'eth0'],
      [backend, 'eth0'],
    ] as const)
      sh('ip', '-n', namespace, 'link', 'set', device, 'up');
    sh('ip', '-n', client, 'route', 'add', '198.19.0.0/16', 'via', '198.18.1.2');
    sh('ip', '-n', backend, 'route', 'add', '198.18.1.0/24', 'via', '198.18.2.1');
    sh('ip', 'netns', 'exec', node, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
  } catch (error) {
    for (const namespace of created) sh('ip', 'netns', 'del', namespace);
    throw error;
  }
  return {
    node,
    client,
    backend,
    remove: () => {
      for (const namespace of created) sh('ip', 'netns', 'del', namespace);
    },
  };
}

const CLIENT_SCRIPT = `
const net = require('node:net');
const [host, port, count] = process.argv.slice(1);
const times = [];
let failures = 0;
function once(left) {
  if (left === 0) { process.stdout.write(JSON.stringify({ times, failures })); return; }
  const start = process.hrtime.bigint();
  const socket = net.connect({ host, port: Number(port) });
  socket.setTimeout(2000, () => { failures++; socket.destroy(); once(left - 1); });
  socket.on('connect', () => { times.push(Number(process.hrtime.bigint() - start) / 1e6); socket.destroy(); once(left - 1); });
  socket.on('error', () => { failures++; once(left - 1); });
}
once(Number(count));
`;

async function measureLatency(client: string, destination: string, port: number) {
  const output = execFileSync(
    'ip',
    [
      'netns',
      'exec',
      client,
      process.execPath,
      '-e',
      CLIENT_SCRIPT,
      destination,
      String(port),
      String(connections),
    ],
    { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
  );
  const parsed = JSON.parse(output) as { times: number[]; failures: number };
  const sorted = [...parsed.times].sort((a, b) => a - b);
  return {
    connections,
    failures: parsed.failures,
    p50Ms: sorted.length > 0 ? Math.round(percentile(sorted, 50) * 1000) / 1000 : null,
    p99Ms: sorted.length > 0 ? Math.round(percentile(sorted, 99) * 1000) / 1000 : null,
  };
}

async function benchmark(count: number) {
  const tracker = new ChangeTracker({ node: NODE });
  const startBuild = performance.now();
  for (let index = 0; index < count; index++) {
    tracker.updateService(
      makeService(`svc-${index}`, {
        clusterIP: serviceIP(index),
        ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: BACKEND_PORT }],
      }),
    );
    for (const slice of sliceFor(index, count, 0)) tracker.updateEndpointSlice(slice);
  }
  let snapshot = tracker.snapshot();
  const buildMs = performance.now() - startBuild;
  const id = randomBytes(3).toString('hex');
  const topology = createTopology(id);
  const server = latency
    ? spawn(
        'ip',
        [
          'netns',
          'exec',
          topology.backend,
          process.execPath,
          '-e',
          `require('node:net').createServer((s) => s.end()).listen(${BACKEND_PORT})`,
        ],
        { stdio: 'ignore' },
      )
    : null;
  try {
    const run = commandRunner(topology.node);
    const proxier = new NftablesProxier({
      family: 'IPv4',
      run,
      render: { ...DEFAULT_NFTABLES_RENDER_OPTIONS, ...renderOptions },
    });
    const startRender = performance.now();
    const full = proxier.render(snapshot.desired.IPv4, NODE, {
      changedServices: 'all',
      existingObjects: new Set(),
    });
    const renderMs = performance.now() - startRender;
    progress(
      `${count} Services: rendered ${full.statementCount} statements (${(full.script.length / 1e6).toFixed(1)} MB) in ${renderMs.toFixed(0)} ms`,
    );
    const startFull = performance.now();
    await proxier.apply(full);
    const fullSyncMs = performance.now() - startFull;
    progress(`${count} Services: nft -f full sync ${fullSyncMs.toFixed(0)} ms`);

    let previous: NftablesRuleset = full;
    const partials: { renderMs: number; applyMs: number; statements: number }[] = [];
    for (let round = 1; round <= 5; round++) {
      // One endpoint of the first Service moves to another address.
      const slices = sliceFor(0, count, round);
      for (const slice of slices) tracker.updateEndpointSlice(slice);
      const startPartial = performance.now();
      snapshot = tracker.snapshot();
      const partial = proxier.render(snapshot.desired.IPv4, NODE, {
        changedServices: snapshot.changedServices,
        existingObjects: previous.ownedObjects,
      });
      const partialRenderMs = performance.now() - startPartial;
      const startApply = performance.now();
      await proxier.apply(partial);
      partials.push({
        renderMs: partialRenderMs,
        applyMs: performance.now() - startApply,
        statements: partial.statementCount,
      });
      previous = partial;
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const partialTotal = median(partials.map((item) => item.renderMs + item.applyMs));
    progress(`${count} Services: partial sync median ${partialTotal.toFixed(1)} ms`);

    const result: Record<string, unknown> = {
      services: count,
      endpoints: count * endpointsPerService,
      buildStateMs: round(buildMs),
      nftables: {
        renderMs: round(renderMs),
        scriptMB: round(full.script.length / 1e6),
        statements: full.statementCount,
        fullSyncMs: round(fullSyncMs),
        partialSync: {
          totalMs: round(partialTotal),
          renderMs: round(median(partials.map((item) => item.renderMs))),
          nftApplyMs: round(median(partials.map((item) => item.applyMs))),
          statements: partials[0]!.statements,
        },
      },
    };

    if (latency) {
      const destination = serviceIP(count - 1);
      const nftLatency = await measureLatency(topology.client, destination, 80);
      progress(
        `${count} Services: nftables first-packet p50 ${nftLatency.p50Ms} ms p99 ${nftLatency.p99Ms} ms`,
      );
      result.firstPacketToLastService = { nftables: nftLatency };
      if (count > iptablesMaxServices) return result;
      await proxier.cleanup();
      const iptables = new IptablesProxier({
        family: 'IPv4',
        run,
        render: { ...DEFAULT_IPTABLES_RENDER_OPTIONS, ...renderOptions },
      });
      const startIptables = performance.now();
      const rules = iptables.render(snapshot.desired.IPv4, NODE, {
        changedServices: 'all',
        existingObjects: new Set(),
      });
      await iptables.apply(rules);
      const iptablesFullMs = performance.now() - startIptables;
      const iptablesLatency = await measureLatency(topology.client, destination, 80);
      progress(
        `${count} Services: iptables first-packet p50 ${iptablesLatency.p50Ms} ms p99 ${iptablesLatency.p99Ms} ms`,
      );
      result.firstPacketToLastService = {
        nftables: nftLatency,
        iptables: { ...iptablesLatency, fullSyncMs: round(iptablesFullMs) },
      };
    }
    return result;
  } finally {
    server?.kill();
    topology.remove();
  }
}

const results = [];
for (const count of counts) results.push(await benchmark(count));
process.stdout.write(
  `${JSON.stringify({ benchmark: 'proxier-nftables', endpointsPerService, results }, null, 2)}\n`,
);
