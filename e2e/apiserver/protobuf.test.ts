import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeKubernetesProtobuf, UnsupportedProtobuf } from './protobuf.ts';

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function bytesField(num: number, payload: number[] | string): number[] {
  const data = typeof payload === 'string' ? [...Buffer.from(payload)] : payload;
  return [...varint((num << 3) | 2), ...varint(data.length), ...data];
}

function varintField(num: number, value: number): number[] {
  return [...varint(num << 3), ...varint(value)];
}

function envelope(apiVersion: string, kind: string, raw: number[]): Uint8Array {
  const typeMeta = [...bytesField(1, apiVersion), ...bytesField(2, kind)];
  return new Uint8Array([
    0x6b,
    0x38,
    0x73,
    0x00,
    ...bytesField(1, typeMeta),
    ...bytesField(2, raw),
    ...bytesField(3, ''),
    ...bytesField(4, ''),
  ]);
}

const entry = (key: string, value: string) => [...bytesField(1, key), ...bytesField(2, value)];

describe('decodeKubernetesProtobuf', () => {
  test('decodes the DeleteOptions of a typed DELETE in any group version, keeping zero pointers', () => {
    const raw = [
      ...varintField(1, 0),
      ...bytesField(2, [...bytesField(1, 'uid-1'), ...bytesField(2, '42')]),
      ...bytesField(4, 'Foreground'),
      ...bytesField(5, 'All'),
    ];
    for (const apiVersion of ['v1', 'apps/v1', 'meta.k8s.io/v1']) {
      assert.deepEqual(decodeKubernetesProtobuf(envelope(apiVersion, 'DeleteOptions', raw)), {
        apiVersion,
        kind: 'DeleteOptions',
        gracePeriodSeconds: 0,
        preconditions: { uid: 'uid-1', resourceVersion: '42' },
        propagationPolicy: 'Foreground',
        dryRun: ['All'],
      });
    }
  });

  test('decodes a ConfigMap with metadata, labels and data', () => {
    const meta = [
      ...bytesField(1, 'cfg'),
      ...bytesField(2, ''),
      ...bytesField(3, 'demo'),
      ...bytesField(11, entry('app', 'web')),
    ];
    const raw = [
      ...bytesField(1, meta),
      ...bytesField(2, entry('a', 'b')),
      ...bytesField(2, entry('c', 'd')),
      ...varintField(4, 1),
    ];
    assert.deepEqual(decodeKubernetesProtobuf(envelope('v1', 'ConfigMap', raw)), {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'cfg', namespace: 'demo', labels: { app: 'web' } },
      data: { a: 'b', c: 'd' },
      immutable: true,
    });
  });

  test('Secret data is bytes (base64 in JSON); unknown fields holding only zero values are skipped', () => {
    const raw = [
      ...bytesField(1, bytesField(1, 's')),
      ...bytesField(2, entry('pw', 'hunter2')),
      ...bytesField(3, 'Opaque'),
      ...varintField(99, 0),
      ...bytesField(98, [...bytesField(1, ''), ...varintField(2, 0)]),
    ];
    assert.deepEqual(decodeKubernetesProtobuf(envelope('v1', 'Secret', raw)), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's' },
      data: { pw: Buffer.from('hunter2').toString('base64') },
      type: 'Opaque',
    });
  });

  test('a Service port targetPort decodes as int or string', () => {
    const intOrString = (n: number | string) =>
      typeof n === 'number'
        ? [...varintField(1, 0), ...varintField(2, n)]
        : [...varintField(1, 1), ...bytesField(3, n)];
    const port = (p: number, target: number | string) =>
      bytesField(1, [...varintField(3, p), ...bytesField(4, intOrString(target))]);
    const raw = [
      ...bytesField(1, bytesField(1, 'svc')),
      ...bytesField(2, [...port(80, 8080), ...port(443, 'https')]),
    ];
    assert.deepEqual(decodeKubernetesProtobuf(envelope('v1', 'Service', raw)).spec, {
      ports: [
        { port: 80, targetPort: 8080 },
        { port: 443, targetPort: 'https' },
      ],
    });
  });

  test('kinds without a schema, fields with data outside the schema and malformed bodies are rejected', () => {
    assert.throws(() => decodeKubernetesProtobuf(envelope('batch/v1', 'Job', [])), UnsupportedProtobuf);
    assert.throws(
      () =>
        decodeKubernetesProtobuf(
          envelope('v1', 'ConfigMap', [...bytesField(1, bytesField(1, 'c')), ...varintField(99, 7)]),
        ),
      UnsupportedProtobuf,
    );
    assert.throws(() => decodeKubernetesProtobuf(new Uint8Array([1, 2, 3, 4])), /prefix/);
    assert.throws(
      () => decodeKubernetesProtobuf(new Uint8Array([0x6b, 0x38, 0x73, 0x00, 0x12, 0x05, 0x01])),
      /truncated/,
    );
  });
});
