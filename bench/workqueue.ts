/**
 * Work queue benchmark: keys per second through the queue with a no-op reconciler, and the heap
 * cost of keys waiting in it. Prints one JSON object. Run: `node bench/workqueue.ts`.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Controller } from '../controllers/runtime/controller.ts';
import { createLogger } from '../controllers/runtime/logging.ts';
import { WorkQueue } from '../controllers/runtime/workqueue.ts';

const THROUGHPUT_KEYS = 200_000;
const MEMORY_KEYS = 100_000;
const CONCURRENCIES = [1, 8] as const;

// Exposes gc() without a command-line flag, so the memory figure is taken on a collected heap
// and the benchmark still runs as a plain `node bench/workqueue.ts`.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

function distinctKeys(count: number, prefix: string): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}/service-${i}`);
}

interface ThroughputResult {
  concurrency: number;
  keys: number;
  seconds: number;
  keysPerSecond: number;
}

/** Adds `keys` to a started queue and waits until every one has been processed. */
async function measure(
  concurrency: number,
  keys: string[],
  run: (keys: string[]) => Promise<void>,
): Promise<ThroughputResult> {
  collectGarbage();
  const startedAt = performance.now();
  await run(keys);
  const seconds = (performance.now() - startedAt) / 1000;
  return {
    concurrency,
    keys: keys.length,
    seconds: round(seconds, 3),
    keysPerSecond: Math.round(keys.length / seconds),
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

async function workQueueThroughput(concurrency: number): Promise<ThroughputResult> {
  let processed = 0;
  const queue = new WorkQueue(
    async () => {
      processed++;
    },
    { concurrency },
  );
  queue.start();
  const result = await measure(
    concurrency,
    distinctKeys(THROUGHPUT_KEYS, `wq${concurrency}`),
    async (keys) => {
      for (const key of keys) queue.add(key);
      await queue.whenIdle();
    },
  );
  await queue.shutDown();
  if (processed !== THROUGHPUT_KEYS) throw new Error(`processed ${processed} of ${THROUGHPUT_KEYS} keys`);
  return result;
}

async function controllerThroughput(concurrency: number): Promise<ThroughputResult> {
  let reconciled = 0;
  const controller = new Controller({
    name: `bench-${concurrency}`,
    concurrency,
    logger: createLogger({ level: 'silent' }),
    reconciler: {
      async reconcile() {
        reconciled++;
        return undefined;
      },
    },
  });
  controller.run();
  const result = await measure(
    concurrency,
    distinctKeys(THROUGHPUT_KEYS, `ctl${concurrency}`),
    async (keys) => {
      for (const key of keys) controller.enqueue(key);
      await controller.whenIdle();
    },
  );
  await controller.stop();
  if (reconciled !== THROUGHPUT_KEYS) throw new Error(`reconciled ${reconciled} of ${THROUGHPUT_KEYS} keys`);
  return result;
}

/**
 * Heap growth from holding `MEMORY_KEYS` distinct keys waiting (the queue is not started). The key
 * strings are made before the baseline: they exist in the informer cache anyway, so the delta
 * is what the queue itself costs.
 */
async function waitingKeysMemory() {
  const keys = distinctKeys(MEMORY_KEYS, 'mem');
  const queue = new WorkQueue(async () => {});
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  const startedAt = performance.now();
  for (const key of keys) queue.add(key);
  const addSeconds = (performance.now() - startedAt) / 1000;
  collectGarbage();
  const heapUsedDeltaBytes = process.memoryUsage().heapUsed - before;
  const waiting = queue.length;
  await queue.shutDown();
  return {
    keys: MEMORY_KEYS,
    waiting,
    heapUsedDeltaBytes,
    bytesPerKey: Math.round(heapUsedDeltaBytes / MEMORY_KEYS),
    addsPerSecond: Math.round(MEMORY_KEYS / addSeconds),
  };
}

const workQueue: ThroughputResult[] = [];
const controller: ThroughputResult[] = [];
for (const concurrency of CONCURRENCIES) {
  workQueue.push(await workQueueThroughput(concurrency));
  controller.push(await controllerThroughput(concurrency));
}

console.log(
  JSON.stringify({
    benchmark: 'workqueue',
    node: process.version,
    throughput: {
      note: 'distinct keys added to a started queue, no-op handler, until idle',
      workQueue,
      controllerWithMetrics: controller,
    },
    memoryWithKeysWaiting: await waitingKeysMemory(),
  }),
);
