import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from './patch.ts';

describe('applyJsonPatch', () => {
  test('applies add, remove, replace, move, copy and test in order', () => {
    const doc = { a: 1, list: [1, 2], nested: { x: 'y' } };
    const out = applyJsonPatch(doc, [
      { op: 'add', path: '/list/-', value: 3 },
      { op: 'add', path: '/list/0', value: 0 },
      { op: 'remove', path: '/a' },
      { op: 'replace', path: '/nested/x', value: 'z' },
      { op: 'copy', from: '/nested', path: '/copied' },
      { op: 'move', from: '/copied/x', path: '/moved' },
      { op: 'test', path: '/moved', value: 'z' },
      { op: 'add', path: '/a~1b', value: true },
    ]);
    assert.deepEqual(out, { list: [0, 1, 2, 3], nested: { x: 'z' }, copied: {}, moved: 'z', 'a/b': true });
    assert.deepEqual(doc, { a: 1, list: [1, 2], nested: { x: 'y' } });
  });

  test('a failed test names the operation and leaves the input alone', () => {
    const doc = { a: 1 };
    assert.throws(
      () =>
        applyJsonPatch(doc, [
          { op: 'add', path: '/b', value: 2 },
          { op: 'test', path: '/a', value: 2 },
        ]),
      /operation 1 \(test \/a\): testing value 2 failed/,
    );
    assert.deepEqual(doc, { a: 1 });
  });

  test('rejects missing paths, bad indexes and unknown operations', () => {
    assert.throws(() => applyJsonPatch({}, [{ op: 'remove', path: '/nope' }]), /does not exist/);
    assert.throws(() => applyJsonPatch({}, [{ op: 'replace', path: '/nope', value: 1 }]), /does not exist/);
    assert.throws(() => applyJsonPatch({ l: [] }, [{ op: 'add', path: '/l/5', value: 1 }]), /out of range/);
    assert.throws(
      () => applyJsonPatch({ a: { b: 1 } }, [{ op: 'add', path: '/x/y', value: 1 }]),
      /missing "x"/,
    );
    assert.throws(() => applyJsonPatch({}, [{ op: 'frob', path: '/a' }]), /unknown operation "frob"/);
    assert.throws(() => applyJsonPatch({}, { op: 'add' }), /must be an array/);
    assert.throws(() => applyJsonPatch({}, [{ op: 'add', path: 'a', value: 1 }]), /must start with/);
  });
});

describe('applyMergePatch', () => {
  test('merges objects, deletes on null and replaces lists', () => {
    assert.deepEqual(
      applyMergePatch({ a: { b: 1, c: 2 }, l: [1, 2], k: 'v' }, { a: { b: null, d: 3 }, l: [3], k: null }),
      { a: { c: 2, d: 3 }, l: [3] },
    );
  });
});

describe('applyStrategicMergePatch', () => {
  const pod = {
    metadata: { finalizers: ['a'] },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'v1',
          ports: [{ containerPort: 80, name: 'http' }],
          env: [{ name: 'A', value: '1' }],
        },
        { name: 'sidecar', image: 's1' },
      ],
    },
  };

  test('merges containers by name, ports by containerPort and env by name', () => {
    const out = applyStrategicMergePatch(pod, {
      metadata: { finalizers: ['b'] },
      spec: {
        containers: [
          {
            name: 'app',
            image: 'v2',
            ports: [{ containerPort: 443, name: 'https' }],
            env: [{ name: 'B', value: '2' }],
          },
        ],
      },
    });
    assert.deepEqual(out, {
      metadata: { finalizers: ['a', 'b'] },
      spec: {
        containers: [
          {
            name: 'app',
            image: 'v2',
            ports: [
              { containerPort: 80, name: 'http' },
              { containerPort: 443, name: 'https' },
            ],
            env: [
              { name: 'A', value: '1' },
              { name: 'B', value: '2' },
            ],
          },
          { name: 'sidecar', image: 's1' },
        ],
      },
    });
  });

  test('$patch: delete removes one element and $patch: replace replaces the list', () => {
    const deleted = applyStrategicMergePatch(pod, {
      spec: { containers: [{ name: 'sidecar', $patch: 'delete' }] },
    });
    assert.deepEqual(
      (deleted as { spec: { containers: { name: string }[] } }).spec.containers.map((c) => c.name),
      ['app'],
    );
    const replaced = applyStrategicMergePatch(pod, {
      spec: { containers: [{ name: 'only', image: 'x' }, { $patch: 'replace' }] },
    });
    assert.deepEqual(replaced, {
      metadata: { finalizers: ['a'] },
      spec: { containers: [{ name: 'only', image: 'x' }] },
    });
  });

  test('Service ports merge by port; lists without a merge key are replaced', () => {
    const svc = { spec: { ports: [{ port: 80, targetPort: 8080 }], externalIPs: ['198.18.0.1'] } };
    const out = applyStrategicMergePatch(svc, {
      spec: { ports: [{ port: 80, targetPort: 9090 }, { port: 443 }], externalIPs: ['198.18.0.2'] },
    });
    assert.deepEqual(out, {
      spec: { ports: [{ port: 80, targetPort: 9090 }, { port: 443 }], externalIPs: ['198.18.0.2'] },
    });
  });

  test('honours $setElementOrder, $deleteFromPrimitiveList, $retainKeys and null', () => {
    const out = applyStrategicMergePatch(
      {
        metadata: { finalizers: ['a', 'b'], labels: { x: '1' } },
        spec: { ports: [{ port: 1 }, { port: 2 }] },
        strategy: { type: 'A', a: {} },
      },
      {
        metadata: { '$deleteFromPrimitiveList/finalizers': ['a'], labels: { x: null } },
        spec: { '$setElementOrder/ports': [{ port: 2 }, { port: 1 }] },
        strategy: { $retainKeys: ['type'], type: 'B' },
      },
    );
    assert.deepEqual(out, {
      metadata: { finalizers: ['b'], labels: {} },
      spec: { ports: [{ port: 2 }, { port: 1 }] },
      strategy: { type: 'B' },
    });
  });

  test('EndpointSlice address lists are replaced, not merged', () => {
    const out = applyStrategicMergePatch(
      { endpoints: [{ addresses: ['198.18.0.1'] }] },
      { endpoints: [{ addresses: ['198.18.0.2'] }] },
    );
    assert.deepEqual(out, { endpoints: [{ addresses: ['198.18.0.2'] }] });
  });
});
