import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1ConfigMap } from '@kubernetes/client-node';
import fc from 'fast-check';
import { ClusterIPAllocator, NodePortAllocator, type RandomIndex, type RangeAllocator } from './allocator.ts';
import { Bitmap } from './bitmap.ts';
import { ConfigMapAllocationStore, type ConfigMapClient } from './configmap-store.ts';
import { AllocationError, ConflictError } from './errors.ts';
import { InMemoryConfigMapClient } from './memory-configmap-client.ts';
import { planRepair, type ServiceAllocations } from './repair.ts';

const namespace = 'portico-system';
const name = 'shared-allocations';
const REPLICAS = 3;

type Action =
  | { type: 'next'; replica: number; serviceStored: boolean }
  | { type: 'static'; replica: number; pick: number }
  | { type: 'release'; replica: number; pick: number }
  | { type: 'crash'; replica: number }
  | { type: 'foreignWrite' };

const replica = fc.nat(REPLICAS - 1);
const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ type: fc.constant('next' as const), replica, serviceStored: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('static' as const), replica, pick: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('release' as const), replica, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('crash' as const), replica }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('foreignWrite' as const) }) },
);

/** Deterministic random source, so fast-check can replay a failing run exactly. */
function seededRandom(seed: number): RandomIndex {
  let state = seed >>> 0;
  return (bound) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * bound);
  };
}

interface Kind<T extends string | number> {
  readonly label: string;
  newAllocator(random: RandomIndex): RangeAllocator<T>;
  /** A candidate for a static request; some picks fall outside the range on purpose. */
  staticValue(pick: number): T;
}

const kinds: Array<Kind<string> | Kind<number>> = [
  {
    label: 'NodePort 30000-30019 (static band 16)',
    newAllocator: (random) => new NodePortAllocator('30000-30019', { random }),
    staticValue: (pick) => 29995 + pick,
  } satisfies Kind<number>,
  {
    label: 'ClusterIP fd00::/123 (31 addresses, static band 16)',
    newAllocator: (random) => new ClusterIPAllocator('fd00::/123', { random }),
    staticValue: (pick) => `fd00::${pick.toString(16)}`,
  } satisfies Kind<string>,
];

function storedBitmap(server: InMemoryConfigMapClient, size: number): Bitmap {
  const configMap = server.peek(namespace, name);
  return configMap === undefined
    ? new Bitmap(size)
    : Bitmap.fromBase64(configMap.binaryData!['bitmap']!, size);
}

/**
 * A replica's view of the API server: every request and every response is a step the fast-check
 * scheduler orders, so replicas interleave at each network hop. After a crash the replica
 * sends nothing more and never hears back, though a request already delivered still lands.
 */
function replicaClient(
  server: InMemoryConfigMapClient,
  s: fc.Scheduler,
  crashed: () => boolean,
): ConfigMapClient {
  const never = new Promise<never>(() => {});
  const hop = async <R>(label: string, call: () => Promise<R>): Promise<R> => {
    await s.schedule(Promise.resolve(), `${label} request`);
    if (crashed()) return never;
    let outcome: { ok: true; value: R } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await call() };
    } catch (error) {
      outcome = { ok: false, error };
    }
    await s.schedule(Promise.resolve(), `${label} response`);
    if (crashed()) return never;
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  };
  return {
    get: (ns, n) => hop('get', () => server.get(ns, n)),
    create: (cm: V1ConfigMap) => hop('create', () => server.create(cm)),
    replace: (cm: V1ConfigMap) => hop('replace', () => server.replace(cm)),
  };
}

async function runInterleaving<T extends string | number>(
  kind: Kind<T>,
  s: fc.Scheduler,
  actions: readonly Action[],
  seed: number,
): Promise<void> {
  const server = new InMemoryConfigMapClient();
  const random = seededRandom(seed);
  const size = kind.newAllocator(random).range.size;
  const range = kind.newAllocator(random).range;
  /** value → the Service that holds it (its creation was stored). */
  const owners = new Map<T, string>();
  const unexpected: unknown[] = [];
  let services = 0;

  const start = (): { store: ConfigMapAllocationStore<T>; crash: () => void } => {
    let dead = false;
    const store = new ConfigMapAllocationStore<T>({
      client: replicaClient(server, s, () => dead),
      namespace,
      name,
      newAllocator: () => kind.newAllocator(random),
      sleep: () => s.schedule(Promise.resolve(), 'backoff'),
      gatherBatch: () => s.schedule(Promise.resolve(), 'batch'),
      jitter: () => 0.5,
      maxAttempts: 1000,
    });
    const crash = (): void => {
      dead = true;
    };
    return { store, crash };
  };
  const replicas = Array.from({ length: REPLICAS }, start);

  const acquired = (value: T, keep: boolean): void => {
    const offset = range.offsetOf(value)!;
    assert.ok(storedBitmap(server, size).test(offset), `${value} was returned before it was durable`);
    assert.ok(!owners.has(value), `${value} handed to a second owner (first: ${owners.get(value)})`);
    if (keep) owners.set(value, `svc-${services++}`);
  };
  const expected = (error: unknown): void => {
    if (error instanceof AllocationError || error instanceof ConflictError) return;
    unexpected.push(error);
  };

  const running = actions.map((step) =>
    s.schedule(Promise.resolve(), step.type).then(async () => {
      if (step.type === 'crash') {
        replicas[step.replica]!.crash();
        replicas[step.replica] = start();
        return;
      }
      if (step.type === 'foreignWrite') {
        server.touch(namespace, name);
        return;
      }
      const { store } = replicas[step.replica]!;
      try {
        if (step.type === 'next') {
          acquired(await store.allocateNext(), step.serviceStored);
        } else if (step.type === 'static') {
          const value = kind.staticValue(step.pick);
          await store.allocate(value);
          acquired(value, true);
        } else {
          const held = [...owners.keys()];
          if (held.length === 0) return;
          const value = held[step.pick % held.length]!;
          // The Service is deleted first; the value may be reused once the release lands.
          owners.delete(value);
          await store.release(value);
        }
      } catch (error) {
        expected(error);
      }
    }),
  );
  for (const promise of running) promise.catch((error: unknown) => unexpected.push(error));
  // Operations of crashed replicas never settle, so wait for the scheduler to run dry instead of for them.
  await s.waitIdle();
  assert.deepEqual(unexpected, []);

  const stored = storedBitmap(server, size);
  for (const value of owners.keys())
    assert.ok(stored.test(range.offsetOf(value)!), `${value} is held but not stored`);

  // Repair: leaks are kept through the grace period, then the bitmap holds exactly the owners' values.
  const held: ServiceAllocations<T>[] = [...owners].map(([value, service]) => ({
    namespace: 'default',
    name: service,
    values: [value],
  }));
  const first = planRepair(held, { range, bitmap: stored }, 0, new Map(), 1000);
  assert.equal(first.leaksFreed.length, 0);
  assert.deepEqual(first.problems, []);
  const second = planRepair(held, { range, bitmap: first.bitmap }, 1000, first.seenUnusedSince, 1000);
  const ownedOffsets = [...owners.keys()].map((value) => range.offsetOf(value)!).sort((a, b) => a - b);
  assert.deepEqual([...second.bitmap.setIndexes()], ownedOffsets);
  assert.equal(second.leaksFreed.length, stored.count - owners.size);
}

describe('allocation through a shared ConfigMap under random interleavings', () => {
  for (const kind of kinds) {
    test(`${kind.label}: never two owners, nothing returned before it is durable, repair converges`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.scheduler(),
          fc.array(action, { minLength: 1, maxLength: 40 }),
          fc.integer(),
          async (s, actions, seed) => {
            await runInterleaving(kind as Kind<string | number>, s, actions, seed);
          },
        ),
        { numRuns: 300 },
      );
    });
  }
});
