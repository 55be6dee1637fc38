/**
 * Benchmark of the nftables proxier with the iptables proxier (legacy backend) side by side. For
 * each size (default 1,000 / 10,000 / 30,000 Services × 10 endpoints), in one network namespace:
 * - render: build the desired state and render a full sync;
 * - fullSync: render + apply of the full ruleset into the fresh namespace (`nft -f`, or
 *   `iptables-legacy-restore`);
 * - partialSync: render + apply after one endpoint of one Service moved to another address
 *   (median of 5 for nftables, of 3 for iptables, whose legacy restore rewrites the whole table),
 *   starting 1 s after the full sync, as the agent's --min-sync-period would; the commands run
 *   through `ip netns exec`, which the agent on its node does not use, so its cost (measured in
 *   the same run) is also subtracted (`totalWithoutNetnsExecMs`);
 * - with `--latency`: time to connect (TCP handshake) from a client namespace to the last
 *   Service's cluster IP through the node namespace to a backend namespace, p50/p99 over 1,000
 *   connections, with each mode's rules; and the same handshake straight to a backend address
 *   with no rules loaded (`noRules`), the kernel's own cost, measured first in the same namespaces.
 * The iptables side uses the legacy backend: with the nf_tables backend, iptables-restore of
 * 30,000 Services takes longer than 10 minutes. Needs root. Every address is in 198.18.0.0/15
 * (cluster IPs 198.19.0.0/16) and lives only in the namespaces created here, which are deleted
 * at the end, also on failure.
 *
 * Usage: node bench/proxier-nftables.ts [--latency] [--iptables-max=N] [serviceCounts, comma-separated]
 * (the iptables side runs only up to --iptables-max Services, default: every size).
 * Progress goes to stderr, the JSON to stdout.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { commandRunner, IptablesProxier } from '../agent/iptables/proxier.ts';
import { DEFAULT_IPTABLES_RENDER_OPTIONS } from '../agent/iptables/render.ts';
import { NftablesProxier } from '../agent/nftables/proxier.ts';
import { DEFAULT_NFTABLES_RENDER_OPTIONS } from '../agent/nftables/render.ts';
import type { RenderedRuleset, SyncScope } from '../agent/proxier.ts';
import { makeService, makeSlice } from '../agent/state/test-fixtures.ts';
import { ChangeTracker } from '../agent/state/tracker.ts';
import type { DesiredState, NodeInfo } from '../agent/state/types.ts';

const args = process.argv.slice(2);
const latency = args.includes('--latency');
const iptablesMaxServices = Number(
  args.find((arg) => arg.startsWith('--iptables-max='))?.slice('--iptables-max='.length) ?? 'Infinity',
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
    // For the no-rules baseline: the same path through the node, without any translation.
    sh('ip', '-n', client, 'route', 'add', '198.18.2.0/24', 'via', '198.18.1.2');
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

/** Opens `count` connections to `destination:port`, one after another, from the client namespace. */
function connectFromClient(
  client: string,
  destination: string,
  port: number,
  count: number,
): { times: number[]; failures: number } {
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
      String(count),
    ],
    { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
  );
  return JSON.parse(output) as { times: number[]; failures: number };
}

/** Waits until the backend accepts connections: under load its server starts slowly. */
async function waitForBackend(client: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (connectFromClient(client, BACKEND_IPS[0]!, BACKEND_PORT, 1).failures === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the backend server did not start listening');
}

async function measureLatency(client: string, destination: string, port: number) {
  const parsed = connectFromClient(client, destination, port, connections);
  const sorted = [...parsed.times].sort((a, b) => a - b);
  return {
    connections,
    failures: parsed.failures,
    p50Ms: sorted.length > 0 ? Math.round(percentile(sorted, 50) * 1000) / 1000 : null,
    p99Ms: sorted.length > 0 ? Math.round(percentile(sorted, 99) * 1000) / 1000 : null,
  };
}

/** The part of a proxier a sync benchmark drives. */
interface BenchProxier<Ruleset extends RenderedRuleset> {
  render(desired: DesiredState, node: NodeInfo, scope: SyncScope): Ruleset;
  apply(ruleset: Ruleset): Promise<void>;
  cleanup(): Promise<void>;
}

/**
 * What running a command through `ip netns exec` adds over spawning it directly, as the agent
 * does on its node (median of 9, from this process, whose heap size also slows spawning).
 */
async function netnsExecOverheadMs(namespace: string): Promise<number> {
  const spawnMs = async (argv: string[]) => {
    const start = performance.now();
    await new Promise((resolve) => spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' }).on('close', resolve));
    return performance.now() - start;
  };
  const direct: number[] = [];
  const wrapped: number[] = [];
  for (let round = 0; round < 9; round++) {
    direct.push(await spawnMs(['true']));
    wrapped.push(await spawnMs(['ip', 'netns', 'exec', namespace, 'true']));
  }
  return Math.max(0, median(wrapped) - median(direct));
}

function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

/**
 * Full sync of the tracker's state into an empty namespace, then `rounds` partial syncs, each
 * after one endpoint of the first Service moved. `generation` counts moves across modes, so every
 * round is a real change.
 */
async function measureSyncs<Ruleset extends RenderedRuleset>(
  label: string,
  proxier: BenchProxier<Ruleset>,
  tracker: ChangeTracker,
  count: number,
  rounds: number,
  generation: { value: number },
  namespace: string,
) {
  // Whatever is pending belongs to the previous mode's rounds; this mode starts from a full sync.
  tracker.snapshot();
  const startRender = performance.now();
  const full = proxier.render(tracker.snapshot().desired.IPv4, NODE, {
    changedServices: 'all',
    existingObjects: new Set(),
  });
  const renderMs = performance.now() - startRender;
  const startApply = performance.now();
  await proxier.apply(full);
  const fullSyncMs = performance.now() - startRender;
  progress(
    `${count} Services: ${label} full sync ${fullSyncMs.toFixed(0)} ms (render ${renderMs.toFixed(0)} ms, apply ${(performance.now() - startApply).toFixed(0)} ms)`,
  );
  // The kernel finishes a big transaction in the background (freeing the old rules, growing the
  // map hash tables); the agent's next sync comes at least --min-sync-period later, so wait as long.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  let previous: RenderedRuleset = full;
  const partials: { renderMs: number; applyMs: number }[] = [];
  for (let round = 1; round <= rounds; round++) {
    generation.value++;
    for (const slice of sliceFor(0, count, generation.value)) tracker.updateEndpointSlice(slice);
    const startPartial = performance.now();
    const snapshot = tracker.snapshot();
    const partial = proxier.render(snapshot.desired.IPv4, NODE, {
      changedServices: snapshot.changedServices,
      existingObjects: previous.ownedObjects,
    });
    const partialRenderMs = performance.now() - startPartial;
    const startPartialApply = performance.now();
    await proxier.apply(partial);
    partials.push({ renderMs: partialRenderMs, applyMs: performance.now() - startPartialApply });
    previous = partial;
  }
  const partialTotal = median(partials.map((item) => item.renderMs + item.applyMs));
  const overhead = await netnsExecOverheadMs(namespace);
  progress(
    `${count} Services: ${label} partial sync median ${partialTotal.toFixed(1)} ms (ip netns exec adds ${overhead.toFixed(1)} ms)`,
  );
  return {
    full,
    summary: {
      renderMs: round(renderMs),
      fullSyncMs: round(fullSyncMs),
      partialSync: {
        rounds,
        totalMs: round(partialTotal),
        renderMs: round(median(partials.map((item) => item.renderMs))),
        applyMs: round(median(partials.map((item) => item.applyMs))),
        netnsExecOverheadMs: round(overhead),
        totalWithoutNetnsExecMs: round(Math.max(0, partialTotal - overhead)),
      },
    },
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
    const destination = serviceIP(count - 1);
    const generation = { value: 0 };
    const result: Record<string, unknown> = {
      services: count,
      endpoints: count * endpointsPerService,
      buildStateMs: round(buildMs),
    };
    if (latency) {
      await waitForBackend(topology.client);
      const noRules = await measureLatency(topology.client, BACKEND_IPS[0]!, BACKEND_PORT);
      progress(
        `${count} Services: no rules, straight to a backend: p50 ${noRules.p50Ms} ms p99 ${noRules.p99Ms} ms`,
      );
      result.noRulesFirstPacket = noRules;
    }

    const nftables = new NftablesProxier({
      family: 'IPv4',
      run,
      render: { ...DEFAULT_NFTABLES_RENDER_OPTIONS, ...renderOptions },
    });
    const nft = await measureSyncs('nftables', nftables, tracker, count, 5, generation, topology.node);
    result.nftables = {
      ...nft.summary,
      scriptMB: round(nft.full.script.length / 1e6),
      ...(latency
        ? { firstPacketToLastService: await measureLatency(topology.client, destination, 80) }
        : {}),
    };
    await nftables.cleanup();
    progress(`${count} Services: nftables ${JSON.stringify(result.nftables)}`);
    if (count > iptablesMaxServices) return result;

    const iptables = new IptablesProxier({
      family: 'IPv4',
      backend: 'legacy',
      run,
      render: { ...DEFAULT_IPTABLES_RENDER_OPTIONS, ...renderOptions },
    });
    const legacy = await measureSyncs(
      'iptables (legacy)',
      iptables,
      tracker,
      count,
      3,
      generation,
      topology.node,
    );
    result.iptablesLegacy = {
      ...legacy.summary,
      restoreLines: legacy.full.lineCount,
      ...(latency
        ? { firstPacketToLastService: await measureLatency(topology.client, destination, 80) }
        : {}),
    };
    await iptables.cleanup();
    progress(`${count} Services: iptables (legacy) ${JSON.stringify(result.iptablesLegacy)}`);
    return result;
  } finally {
    server?.kill();
    topology.remove();
  }
}

const results = [];
for (const count of counts) results.push(await benchmark(count));
process.stdout.write(
  `${JSON.stringify({ benchmark: 'proxier-nftables', endpointsPerService, loadavg: readFileSync('/proc/loadavg', 'utf8').trim(), results }, null, 2)}\n`,
);
