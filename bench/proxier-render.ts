/**
 * Benchmark of the iptables proxier: for 1,000 / 10,000 / 30,000 Services × 10 endpoints, the
 * time to build the desired state and render a full sync, then the time to build and render a
 * partial sync after one endpoint changed, with ruleset sizes. With `--kernel` (root needed) it
 * also loads each ruleset with iptables-restore inside network namespaces it creates and deletes:
 * the bare restore of the full ruleset into an empty namespace (the kernel floor), the proxier's
 * full apply into another empty one, the same full apply again over the loaded rules (the
 * periodic resync), and the partial apply. Prints one JSON object.
 *
 * Usage: node bench/proxier-render.ts [--kernel] [--backend=default|nft|legacy] [--repeat=N]
 *   [serviceCounts, comma-separated]
 * Progress goes to stderr, the JSON to stdout.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { commandRunner, type IptablesBackend, IptablesProxier } from '../agent/iptables/proxier.ts';
import { type IptablesRuleset, restoreInput } from '../agent/iptables/render.ts';
import { TEST_RENDER_OPTIONS } from '../agent/iptables/test-helpers.ts';
import { makeService, makeSlice, TEST_NODE } from '../agent/state/test-fixtures.ts';
import { ChangeTracker } from '../agent/state/tracker.ts';

const args = process.argv.slice(2);
const kernel = args.includes('--kernel');
const backendArg = args.find((arg) => arg.startsWith('--backend='))?.slice('--backend='.length) ?? 'default';
if (backendArg !== 'default' && backendArg !== 'nft' && backendArg !== 'legacy')
  throw new Error(
    `--backend: Unsupported value: "${backendArg}": supported values: "default", "legacy", "nft"`,
  );
const backend: IptablesBackend = backendArg;
const restoreBinary = backend === 'default' ? 'iptables-restore' : `iptables-${backend}-restore`;
const repeatArg = args.find((arg) => arg.startsWith('--repeat='))?.slice('--repeat='.length) ?? '1';
const repeat = Number(repeatArg);
if (!Number.isInteger(repeat) || repeat < 1)
  throw new Error(`--repeat: Invalid value: "${repeatArg}": must be a positive integer`);
const counts = (args.find((arg) => !arg.startsWith('--')) ?? '1000,10000,30000').split(',').map(Number);
const endpointsPerService = 10;

function serviceIP(index: number): string {
  return `10.96.${(index >> 8) & 255}.${index & 255}`;
}

function podIPs(service: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const n = service * count + i;
    return `10.${128 + ((n >> 16) & 127)}.${(n >> 8) & 255}.${n & 255}`;
  });
}

function sizeOf(ruleset: IptablesRuleset) {
  return { lines: ruleset.lineCount, bytes: Buffer.byteLength(restoreInput(ruleset)) };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Wall time and this process's CPU time: the machine is shared, so wall time alone overstates our cost. */
async function timed<T>(work: () => Promise<T> | T): Promise<{ result: T; ms: number; cpuMs: number }> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const result = await work();
  const used = process.cpuUsage(cpu);
  return { result, ms: round(performance.now() - start), cpuMs: round((used.user + used.system) / 1000) };
}

const results = [];
for (const services of counts) {
  const tracker = new ChangeTracker({ node: TEST_NODE });
  for (let i = 0; i < services; i++) {
    const name = `svc-${i}`;
    tracker.updateService(makeService(name, { clusterIP: serviceIP(i) }));
    tracker.updateEndpointSlice(
      makeSlice(
        name,
        podIPs(i, endpointsPerService).map((ip, j) => ({ ip, node: `node-${j}` })),
      ),
    );
  }
  const proxier = new IptablesProxier({ family: 'IPv4', render: TEST_RENDER_OPTIONS });
  const fullSnapshot = await timed(() => tracker.snapshot());
  const full = await timed(() =>
    proxier.render(fullSnapshot.result.desired.IPv4, TEST_NODE, {
      changedServices: 'all',
      existingObjects: new Set(),
    }),
  );

  // One endpoint of one Service goes away.
  const changed = Math.floor(services / 2);
  tracker.updateEndpointSlice(
    makeSlice(
      `svc-${changed}`,
      podIPs(changed, endpointsPerService)
        .slice(1)
        .map((ip, j) => ({ ip, node: `node-${j}` })),
    ),
  );
  const partialSnapshot = await timed(() => tracker.snapshot());
  const partial = await timed(() =>
    proxier.render(partialSnapshot.result.desired.IPv4, TEST_NODE, {
      changedServices: partialSnapshot.result.changedServices,
      existingObjects: full.result.ownedObjects,
    }),
  );

  const row: Record<string, unknown> = {
    services,
    endpoints: services * endpointsPerService,
    full: {
      desiredStateMs: fullSnapshot.ms,
      desiredStateCpuMs: fullSnapshot.cpuMs,
      renderMs: full.ms,
      renderCpuMs: full.cpuMs,
      ...sizeOf(full.result),
    },
    partialAfterOneEndpointChange: {
      desiredStateMs: partialSnapshot.ms,
      desiredStateCpuMs: partialSnapshot.cpuMs,
      renderMs: partial.ms,
      renderCpuMs: partial.cpuMs,
      ...sizeOf(partial.result),
    },
  };

  if (kernel) {
    // Each restore below starts from an empty namespace of its own, so the floor and our apply
    // load the same ruleset into the same state; with --repeat, the fastest of N runs of each
    // counts, which keeps other work on a shared machine out of the ratio.
    const freshNamespaces: string[] = [];
    const freshNamespace = () => {
      const namespace = `portico-test-bench-${randomBytes(3).toString('hex')}`;
      execFileSync('ip', ['netns', 'add', namespace]);
      freshNamespaces.push(namespace);
      return namespace;
    };
    // Kernel memory: a loaded 30,000-Service table is large, so only the namespace in use is kept.
    const deleteNamespace = (namespace: string) => {
      execFileSync('ip', ['netns', 'del', namespace]);
      freshNamespaces.splice(freshNamespaces.indexOf(namespace), 1);
    };
    const proxierIn = (namespace: string) =>
      new IptablesProxier({
        family: 'IPv4',
        backend,
        run: commandRunner(namespace),
        render: TEST_RENDER_OPTIONS,
      });
    try {
      let floorMs = Number.POSITIVE_INFINITY;
      let applyFullMs = Number.POSITIVE_INFINITY;
      let applied: IptablesProxier | null = null;
      for (let attempt = 0; attempt < repeat; attempt++) {
        const floorNamespace = freshNamespace();
        const run = commandRunner(floorNamespace);
        const floor = await timed(() =>
          run(restoreBinary, ['--noflush', '-w', '5'], restoreInput(full.result)),
        );
        if (floor.result.code !== 0) throw new Error(floor.result.stderr);
        floorMs = Math.min(floorMs, floor.ms);
        // The floor's namespace and the previous attempt's go before the next load.
        for (const namespace of [...freshNamespaces]) deleteNamespace(namespace);
        applied = proxierIn(freshNamespace());
        const applyFull = await timed(() => applied!.apply(full.result));
        applyFullMs = Math.min(applyFullMs, applyFull.ms);
      }
      const inNamespace = applied!;
      // The periodic full resync finds every chain in place: each is flushed and refilled.
      const resync = await timed(() => inNamespace.apply(full.result));
      const applyPartial = await timed(() => inNamespace.apply(partial.result));
      const fullSyncMs = fullSnapshot.ms + full.ms + applyFullMs;
      row.kernel = {
        backend,
        repeat,
        fullApplyMs: applyFullMs,
        fullSyncMs: round(fullSyncMs),
        fullResyncOverExistingApplyMs: resync.ms,
        partialApplyMs: applyPartial.ms,
        partialSyncMs: round(partialSnapshot.ms + partial.ms + applyPartial.ms),
        bareRestoreMs: floorMs,
        fullSyncOverFloor: Math.round((fullSyncMs / floorMs) * 100) / 100,
      };
    } finally {
      for (const namespace of freshNamespaces) execFileSync('ip', ['netns', 'del', namespace]);
    }
  }
  results.push(row);
  process.stderr.write(`${JSON.stringify(row)}\n`);
}

console.log(
  JSON.stringify({ benchmark: 'proxier-render', mode: 'iptables', endpointsPerService, results }, null, 2),
);
