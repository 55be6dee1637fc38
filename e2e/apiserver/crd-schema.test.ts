import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pruneAndDefaultCustomResource, validateCustomResource } from './crd-schema.ts';

const schema = {
  type: 'object',
  required: ['spec'],
  properties: {
    spec: {
      type: 'object',
      required: ['addresses'],
      properties: {
        addresses: {
          type: 'array',
          minItems: 1,
          'x-kubernetes-list-type': 'set',
          items: { type: 'string', maxLength: 20 },
        },
        autoAssign: { type: 'boolean', default: true },
        priority: { type: 'integer', minimum: 0, default: 0 },
        mode: { type: 'string', enum: ['L2', 'BGP'] },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        extra: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        conditions: {
          type: 'array',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['type'],
          items: {
            type: 'object',
            properties: { type: { type: 'string' }, reason: { type: 'string', pattern: '^[A-Za-z]+$' } },
          },
        },
      },
    },
  },
};

describe('pruneAndDefaultCustomResource', () => {
  test('drops unknown fields, keeps apiVersion/kind/metadata, preserved and additionalProperties maps, fills defaults', () => {
    const object = {
      apiVersion: 'portico.dev/v1alpha1',
      kind: 'Pool',
      metadata: { name: 'p', labels: { a: 'b' } },
      typo: 1,
      spec: {
        addresses: ['198.18.0.0/24'],
        autoAsign: false,
        labels: { x: 'y' },
        extra: { anything: [1] },
        priority: null,
      },
    };
    pruneAndDefaultCustomResource(object, schema);
    assert.deepEqual(object, {
      apiVersion: 'portico.dev/v1alpha1',
      kind: 'Pool',
      metadata: { name: 'p', labels: { a: 'b' } },
      spec: {
        addresses: ['198.18.0.0/24'],
        labels: { x: 'y' },
        extra: { anything: [1] },
        autoAssign: true,
        priority: 0,
      },
    });
  });
});

describe('validateCustomResource', () => {
  const causes = (spec: unknown) => validateCustomResource({ metadata: { name: 'p' }, spec }, schema);

  test('a valid object has no causes', () => {
    assert.deepEqual(causes({ addresses: ['a'], mode: 'L2', priority: 3 }), []);
  });

  test('reports types, enums, bounds, required fields, duplicates and patterns with their field paths', () => {
    const found = causes({
      addresses: ['a', 'a', 'this string is far too long'],
      mode: 'ARP',
      priority: -1,
      autoAssign: 'yes',
      conditions: [
        { type: 'Ready', reason: 'ok' },
        { type: 'Ready', reason: 'bad reason' },
      ],
    });
    assert.deepEqual(
      found.map((c) => `${c.field}: ${c.message}`),
      [
        'spec.addresses[1]: Duplicate value: "a"',
        'spec.addresses[2]: Too long: may not be more than 20 bytes',
        'spec.mode: Unsupported value: "ARP": supported values: "L2", "BGP"',
        'spec.priority: Invalid value: -1: spec.priority in body should be greater than or equal to 0',
        'spec.autoAssign: Invalid value: "string": spec.autoAssign in body must be of type boolean: "string"',
        'spec.conditions[1]: Duplicate value: {"type":"Ready"}',
        'spec.conditions[1].reason: Invalid value: "bad reason": spec.conditions[1].reason in body should match \'^[A-Za-z]+$\'',
      ],
    );
    assert.deepEqual(
      causes({}).map((c) => c.field),
      ['spec.addresses'],
    );
    assert.deepEqual(
      validateCustomResource({ metadata: {} }, schema).map((c) => c.message),
      ['Required value'],
    );
  });
});
