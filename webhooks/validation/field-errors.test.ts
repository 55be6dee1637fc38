import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  aggregateMessage,
  duplicate,
  type FieldError,
  forbidden,
  formatErrorBody,
  formatFieldError,
  goQuote,
  goSlice,
  invalid,
  invalidStatus,
  notSupported,
  required,
  tooMany,
} from './field-errors.ts';

describe('formatFieldError', () => {
  const rows: { error: FieldError; message: string }[] = [
    {
      error: invalid(
        'spec.ports[0].nodePort',
        29999,
        'provided port is not in the valid range. The range of valid ports is 30000-32767',
      ),
      message:
        'spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. The range of valid ports is 30000-32767',
    },
    {
      error: duplicate('spec.ports[1].name', 'http'),
      message: 'spec.ports[1].name: Duplicate value: "http"',
    },
    {
      error: notSupported('spec.ports[0].protocol', 'ICMP', ['SCTP', 'TCP', 'UDP']),
      message: 'spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
    },
    { error: required('spec.ports'), message: 'spec.ports: Required value' },
    {
      error: required('spec.sessionAffinityConfig', 'when session affinity type is ClientIP'),
      message: 'spec.sessionAffinityConfig: Required value: when session affinity type is ClientIP',
    },
    {
      error: forbidden('spec.ports[0].nodePort', "may not be used when `type` is 'ClusterIP'"),
      message: "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
    },
    {
      error: tooMany('endpoints', 1001, 1000),
      message: 'endpoints: Too many: 1001: must have at most 1000 items',
    },
    {
      error: invalid('spec.ipFamilyPolicy', undefined, "must be set to 'SingleStack'"),
      message: "spec.ipFamilyPolicy: Invalid value: null: must be set to 'SingleStack'",
    },
    {
      error: invalid('spec.clusterIPs', goSlice(['10.0.0.5']), 'first value must match `clusterIP`'),
      message: 'spec.clusterIPs: Invalid value: []string{"10.0.0.5"}: first value must match `clusterIP`',
    },
    { error: duplicate('x', true), message: 'x: Duplicate value: true' },
    { error: notSupported('x', 'y', []), message: 'x: Unsupported value: "y"' },
  ];
  for (const row of rows) {
    test(row.message, () => assert.equal(formatFieldError(row.error), row.message));
  }

  test('the body leaves the field path out', () => {
    assert.equal(formatErrorBody(duplicate('spec.ports[1].name', 'http')), 'Duplicate value: "http"');
  });
});

describe('goQuote and goSlice', () => {
  const rows: [string, string][] = [
    ['plain', '"plain"'],
    ['say "hi"', '"say \\"hi\\""'],
    ['back\\slash', '"back\\\\slash"'],
    ['tab\tnew\nline', '"tab\\tnew\\nline"'],
    ['\x01\x7f', '"\\x01\\x7f"'],
    ['\u0085', '"\\u0085"'],
    ['服务', '"服务"'],
  ];
  for (const [input, quoted] of rows)
    test(`quotes ${JSON.stringify(input)}`, () => assert.equal(goQuote(input), quoted));

  test('slices print as Go literals, nil distinct from empty', () => {
    assert.equal(goSlice(['a', 'b']).goSyntax, '[]string{"a", "b"}');
    assert.equal(goSlice([]).goSyntax, '[]string{}');
    assert.equal(goSlice(undefined).goSyntax, '[]string(nil)');
    assert.equal(goSlice(['IPv4'], 'core.IPFamily').goSyntax, '[]core.IPFamily{"IPv4"}');
  });
});

describe('aggregateMessage and invalidStatus', () => {
  const first = required('spec.ports[0].name');
  const second = required('spec.ports[1].name');

  test('one error is not bracketed', () => {
    assert.equal(aggregateMessage([first]), 'spec.ports[0].name: Required value');
  });

  test('several errors are bracketed and comma separated', () => {
    assert.equal(
      aggregateMessage([first, second]),
      '[spec.ports[0].name: Required value, spec.ports[1].name: Required value]',
    );
  });

  test('repeated messages appear once, as ToAggregate drops them', () => {
    assert.equal(aggregateMessage([first, first]), 'spec.ports[0].name: Required value');
  });

  test('a core Service status carries message, reason and causes', () => {
    const status = invalidStatus({ group: '', kind: 'Service' }, 'web', [
      first,
      duplicate('spec.ports[1].name', 'http'),
    ]);
    assert.deepEqual(status, {
      apiVersion: 'v1',
      kind: 'Status',
      metadata: {},
      status: 'Failure',
      message:
        'Service "web" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Duplicate value: "http"]',
      reason: 'Invalid',
      details: {
        name: 'web',
        kind: 'Service',
        causes: [
          { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.ports[0].name' },
          { reason: 'FieldValueDuplicate', message: 'Duplicate value: "http"', field: 'spec.ports[1].name' },
        ],
      },
      code: 422,
    });
  });

  test('a kind outside the core group is qualified by its group', () => {
    const status = invalidStatus({ group: 'discovery.k8s.io', kind: 'EndpointSlice' }, 'web-abc', [
      required('addressType'),
    ]);
    assert.equal(
      status.message,
      'EndpointSlice.discovery.k8s.io "web-abc" is invalid: addressType: Required value',
    );
    assert.equal(status.details.group, 'discovery.k8s.io');
  });

  test('cause reasons follow the error type', () => {
    const reasons = invalidStatus({ group: '', kind: 'Service' }, 'x', [
      invalid('a', 1, 'bad'),
      notSupported('b', 'c', ['d']),
      forbidden('e', 'no'),
      tooMany('f', 3, 2),
    ]).details.causes.map((cause) => cause.reason);
    assert.deepEqual(reasons, [
      'FieldValueInvalid',
      'FieldValueNotSupported',
      'FieldValueForbidden',
      'FieldValueTooMany',
    ]);
  });

  test('no errors still names the object', () => {
    assert.equal(invalidStatus({ group: '', kind: 'Service' }, 'x', []).message, 'Service "x" is invalid');
  });
});
