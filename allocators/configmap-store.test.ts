import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { allocationConfigMapName } from '../api/allocation.ts';
import { ClusterIPAllocator, NodePortAllocator } from './allocator.ts';
import { Bitmap } from './bitmap.ts';
import { ConfigMapAllocationStore } from './configmap-store.ts';
import { AllocationError, AllocationStateError, ConflictError, RangeMismatchError } from './errors.ts';
import { InMemoryConfigMapClient } from './memory-configmap-client.ts';

const namespace = 'portico-system';
const ipName = allocationConfigMapName('IPv4');
const portName = allocationConfigMapName('NodePort');

function ipStore(client: InMemoryConfigMapClient, cidr = '10.96.0.0/12') {
  return new ConfigMapAllocationStore<string>({
    client,
    namespace,
    name: ipName,
    newAllocator: () => new ClusterIPAllocator(cidr),
    sleep: async () => {},
  });
}

function portStore(client: InMemoryConfigMapClient, range = '30000-32767') {
  return new ConfigMapAllocationStore<number>({
    client,
    namespace,
    name: portName,
    newAllocator: () => new NodePortAllocator(range),
    sleep: async () => {},
  });
}

/** What the stored ConfigMap says is allocated right now. */
function storedIPs(client: InMemoryConfigMapClient, cidr = '10.96.0.0/12'): Set<string> {
  const configMap = client.peek(namespace, ipName);
  const allocator = new ClusterIPAllocator(cidr);
  if (configMap !== undefined) {
    allocator.restore({
      range: allocator.range.spec,
      kind: 'IPv4',
      bitmap: Bitmap.fromBase64(configMap.binaryData!['bitmap']!),
    });
  }
  return new Set(allocator.allocated());
}

describe('ConfigMapAllocationStore', () => {
  test('the first allocation creates the ConfigMap with range, kind, format version and bitmap', async () => {
    const client = new InMemoryConfigMapClient();
    const ip = await ipStore(client).allocateNext();
    const configMap = client.peek(namespace, ipName)!;
    assert.deepEqual(configMap.data, { range: '10.96.0.0/12', kind: 'IPv4', formatVersion: '1' });
    assert.equal(configMap.metadata?.labels?.['app.kubernetes.io/component'], 'portico-allocator');
    assert.deepEqual(storedIPs(client), new Set([ip]));
  });

  test('1,000 concurrent allocations go out in a handful of writes, all distinct and durable', async () => {
    const client = new InMemoryConfigMapClient();
    const store = ipStore(client);
    const ips = await Promise.all(Array.from({ length: 1000 }, () => store.allocateNext()));
    assert.equal(new Set(ips).size, 1000);
    assert.ok(client.writes <= 2, `expected at most 2 writes, got ${client.writes}`);
    assert.deepEqual(storedIPs(client), new Set(ips));
  });

  test('allocations made while a write is in flight are batched into the next write', async () => {
    const client = new InMemoryConfigMapClient();
    const store = ipStore(client);
    const first = store.allocateNext();
    await new Promise((resolve) => setImmediate(resolve));
    const rest = Array.from({ length: 50 }, () => store.allocateNext());
    await Promise.all([first, ...rest]);
    assert.ok(client.writes <= 3, `got ${client.writes} writes`);
  });

  test('on conflict it re-reads, re-applies the pending operations and retries', async () => {
    const client = new InMemoryConfigMapClient();
    const store = ipStore(client);
    await store.allocate('10.96.0.10');
    let injected = 0;
    client.injectConflict = () => injected++ < 3;
    const [a, b] = await Promise.all([store.allocateNext(), store.allocate('10.96.0.11')]);
    assert.equal(store.stats.conflicts, 3);
    assert.equal(b, undefined);
    assert.deepEqual(storedIPs(client), new Set(['10.96.0.10', '10.96.0.11', a]));
  });

  test('two replicas sharing one ConfigMap never hand out the same IP', async () => {
    const client = new InMemoryConfigMapClient();
    const replicas = [
      ipStore(client, '10.0.0.0/24'),
      ipStore(client, '10.0.0.0/24'),
      ipStore(client, '10.0.0.0/24'),
    ];
    const ips = await Promise.all(
      Array.from({ length: 240 }, (_, i) => replicas[i % replicas.length]!.allocateNext()),
    );
    assert.equal(new Set(ips).size, 240);
    assert.deepEqual(storedIPs(client, '10.0.0.0/24'), new Set(ips));
  });

  test('a replica with stale state still answers a static request from the current state', async () => {
    const client = new InMemoryConfigMapClient();
    const a = portStore(client);
    const b = portStore(client);
    await a.allocate(30080);
    await b.release(30080);
    await a.allocate(30080);
    await assert.rejects(b.allocate(30080), /provided port is already allocated/);
  });

  test('a transaction is all or nothing', async () => {
    const client = new InMemoryConfigMapClient();
    const store = portStore(client);
    await store.allocate(30080);
    const writes = client.writes;
    await assert.rejects(
      store.transact([
        { op: 'allocate', value: 30081 },
        { op: 'allocateNext' },
        { op: 'allocate', value: 30080 },
      ]),
      (error: unknown) => error instanceof AllocationError && error.reason === 'AlreadyAllocated',
    );
    const snapshot = await store.read();
    assert.deepEqual([...snapshot.bitmap.setIndexes()], [80]);
    assert.equal(client.writes, writes, 'nothing to write');
    const [next, fixed] = await store.transact([{ op: 'allocateNext' }, { op: 'allocate', value: 30081 }]);
    assert.equal(fixed, 30081);
    assert.equal((await store.read()).bitmap.count, 3);
    assert.ok(next !== 30080 && next !== 30081);
  });

  test('a failed operation in a batch does not hold back the others', async () => {
    const client = new InMemoryConfigMapClient();
    const store = portStore(client);
    const results = await Promise.allSettled([
      store.allocate(30080),
      store.allocate(30080),
      store.allocate(29999),
    ]);
    assert.deepEqual(
      results.map((result) => result.status),
      ['fulfilled', 'rejected', 'rejected'],
    );
    assert.match(
      String((results[2] as PromiseRejectedResult).reason),
      /The range of valid ports is 30000-32767/,
    );
  });

  test('release is durable and idempotent', async () => {
    const client = new InMemoryConfigMapClient();
    const store = ipStore(client);
    const ip = await store.allocateNext();
    assert.equal(await store.release(ip), true);
    assert.equal(await store.release(ip), false);
    assert.equal(storedIPs(client).size, 0);
  });

  test('a ConfigMap for another range is an error that says so, and is left untouched', async () => {
    const client = new InMemoryConfigMapClient();
    await ipStore(client, '10.0.0.0/24').allocate('10.0.0.5');
    const before = client.peek(namespace, ipName)!;
    const store = ipStore(client, '10.96.0.0/12');
    await assert.rejects(store.allocateNext(), (error: unknown) => {
      assert.ok(error instanceof RangeMismatchError);
      assert.match(
        error.message,
        /portico-system\/portico-clusterip-ipv4 holds IPv4 allocations for range 10\.0\.0\.0\/24/,
      );
      assert.match(error.message, /configured IPv4 range is 10\.96\.0\.0\/12; refusing to change it/);
      return true;
    });
    await assert.rejects(store.release('10.0.0.5'), RangeMismatchError);
    assert.deepEqual(client.peek(namespace, ipName), before);
  });

  const broken: Array<[string, (configMap: V1ConfigMap) => void, RegExp]> = [
    [
      'an unknown format version',
      (cm) => {
        cm.data!['formatVersion'] = '2';
      },
      /formatVersion is "2"/,
    ],
    [
      'a missing bitmap',
      (cm) => {
        delete cm.binaryData!['bitmap'];
      },
      /binaryData.bitmap is missing/,
    ],
    [
      'a corrupt bitmap',
      (cm) => {
        cm.binaryData!['bitmap'] = 'AAAA';
      },
      /binaryData.bitmap: bitmap data is 3 bytes/,
    ],
    [
      'a bitmap of the wrong size',
      (cm) => {
        cm.binaryData!['bitmap'] = new Bitmap(10).toBase64();
      },
      /does not match the range size 2768/,
    ],
  ];
  for (const [name, corrupt, message] of broken) {
    test(`a ConfigMap with ${name} is refused and left untouched`, async () => {
      const client = new InMemoryConfigMapClient();
      await portStore(client).allocate(30080);
      const configMap = client.peek(namespace, portName)!;
      corrupt(configMap);
      const stored = client.put(configMap);
      await assert.rejects(portStore(client).allocateNext(), (error: unknown) => {
        assert.ok(error instanceof AllocationStateError, String(error));
        assert.match(error.message, message);
        return true;
      });
      assert.deepEqual(client.peek(namespace, portName), stored);
    });
  }

  test('after too many conflicts in a row the callers get the ConflictError', async () => {
    const client = new InMemoryConfigMapClient();
    client.injectConflict = () => true;
    const store = new ConfigMapAllocationStore<number>({
      client,
      namespace,
      name: portName,
      newAllocator: () => new NodePortAllocator(),
      sleep: async () => {},
      maxAttempts: 5,
    });
    await assert.rejects(store.allocateNext(), ConflictError);
    assert.equal(client.conflicts, 5);
    assert.equal(client.peek(namespace, portName), undefined);
  });

  test('a write whose outcome is unknown returns nothing; what landed is a leak, never a duplicate', async () => {
    const client = new InMemoryConfigMapClient();
    const store = portStore(client);
    await store.allocate(30080);
    const replace = client.replace.bind(client);
    client.replace = async (configMap) => {
      await replace(configMap);
      throw new Error('connection reset by peer');
    };
    await assert.rejects(store.allocateNext(), /connection reset/);
    client.replace = replace;
    const leaked = [...(await store.read()).bitmap.setIndexes()].filter((offset) => offset !== 80);
    assert.equal(leaked.length, 1, 'the write landed although the caller was told it failed');
    const ports = await Promise.all(Array.from({ length: 100 }, () => store.allocateNext()));
    assert.ok(!ports.includes(30000 + leaked[0]!), 'the leaked port is not handed out again');
  });

  test('real backoff timers are used by default and stay short', async () => {
    const client = new InMemoryConfigMapClient();
    let injected = 0;
    client.injectConflict = () => injected++ < 4;
    const store = new ConfigMapAllocationStore<number>({
      client,
      namespace,
      name: portName,
      newAllocator: () => new NodePortAllocator(),
    });
    const started = performance.now();
    await store.allocateNext();
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 1 + 2 + 4 + 8 - 1, `backed off ${elapsed} ms`);
    assert.ok(elapsed < 1000, `backed off ${elapsed} ms`);
  });
});
