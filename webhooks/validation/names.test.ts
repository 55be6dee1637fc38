import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatFieldError } from './field-errors.ts';
import {
  isDNS1035Label,
  isDNS1123Label,
  isDNS1123Subdomain,
  isQualifiedName,
  isValidLabelValue,
  isValidPortName,
  isValidPortNum,
  validateLabels,
} from './names.ts';

const labelRegex =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const subdomainRegex =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const dns1035Regex =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const labelKeyNameRegex =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const labelValueRegex =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

type Row = [input: string, reasons: string[]];

function table(name: string, check: (value: string) => string[], rows: Row[]): void {
  describe(name, () => {
    for (const [input, reasons] of rows) {
      test(`${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input)} → ${reasons.length} reason(s)`, () =>
        assert.deepEqual(check(input), reasons));
    }
  });
}

table('isDNS1123Label', isDNS1123Label, [
  ['http', []],
  ['123-abc', []],
  ['a'.repeat(63), []],
  ['a'.repeat(64), ['must be no more than 63 characters']],
  ['my.port', ['must not contain dots']],
  ['HTTP', [labelRegex]],
  ['-web', [labelRegex]],
  ['123_abc', [labelRegex]],
  ['', [labelRegex]],
]);

table('isDNS1123Subdomain', isDNS1123Subdomain, [
  ['db.example.com', []],
  ['a'.repeat(253), []],
  ['a'.repeat(254), ['must be no more than 253 characters']],
  ['db_example.com', [subdomainRegex]],
  ['Example.com', [subdomainRegex]],
]);

table('isDNS1035Label', isDNS1035Label, [
  ['web', []],
  ['abc-123', []],
  ['123-abc', [dns1035Regex]],
  ['Web', [dns1035Regex]],
  [`a${'b'.repeat(63)}`, ['must be no more than 63 characters']],
]);

table('isValidPortName (IANA service name)', isValidPortName, [
  ['http', []],
  ['http-alt', []],
  ['h2c', []],
  ['a'.repeat(16), ['must be no more than 15 characters']],
  [
    'HTTP',
    [
      'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
      'must contain at least one letter (a-z)',
    ],
  ],
  ['8080', ['must contain at least one letter (a-z)']],
  ['http--alt', ['must not contain consecutive hyphens']],
  ['-http', ['must not begin or end with a hyphen']],
  ['http-', ['must not begin or end with a hyphen']],
]);

table('isQualifiedName', isQualifiedName, [
  ['app', []],
  ['example.com/app', []],
  ['kubernetes.io/h2c', []],
  ['/app', ['prefix part must be non-empty']],
  ['Example_.com/app', [`prefix part ${subdomainRegex}`]],
  ['example.com/', ['name part must be non-empty', labelKeyNameRegex]],
  ['bad proto', [labelKeyNameRegex]],
  [`${'a'.repeat(64)}`, ['name part must be no more than 63 characters']],
  [
    'a/b/c',
    [
      "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ],
  ],
]);

table('isValidLabelValue', isValidLabelValue, [
  ['', []],
  ['web_1.v2', []],
  ['a b', [labelValueRegex]],
  ['a'.repeat(64), ['must be no more than 63 characters']],
]);

describe('isValidPortNum', () => {
  const rows: [number, number][] = [
    [1, 0],
    [65535, 0],
    [0, 1],
    [65536, 1],
    [-1, 1],
    [80.5, 1],
  ];
  for (const [port, count] of rows) {
    test(`${port} gives ${count} reason(s)`, () => {
      const reasons = isValidPortNum(port);
      assert.equal(reasons.length, count);
      if (count > 0) assert.equal(reasons[0], 'must be between 1 and 65535, inclusive');
    });
  }
});

describe('validateLabels', () => {
  test('bad keys and values are reported at the map path', () => {
    const messages = validateLabels({ app: 'web', 'bad key': 'ok', tier: 'a b' }, 'spec.selector').map(
      formatFieldError,
    );
    assert.deepEqual(messages, [
      `spec.selector: Invalid value: "bad key": ${labelKeyNameRegex}`,
      `spec.selector: Invalid value: "a b": ${labelValueRegex}`,
    ]);
  });
});
