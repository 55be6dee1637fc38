/**
 * Name and number formats Kubernetes validates, with its messages (k8s.io/apimachinery
 * util/validation and api/validate/content). Each check returns the list of reasons the value is
 * wrong, empty when it is fine; callers wrap each reason in a field error.
 */

import { type FieldError, invalid } from './field-errors.ts';

const encoder = new TextEncoder();

/** Go measures string length in bytes; so must the length limits. */
function byteLength(value: string): number {
  return encoder.encode(value).length;
}

/** `must be no more than N characters`, Kubernetes' length message. */
export function maxLengthMessage(length: number): string {
  return `must be no more than ${length} characters`;
}

/** Kubernetes' message for a failed pattern, with examples and the pattern itself. */
export function regexMessage(message: string, pattern: string, ...examples: string[]): string {
  if (examples.length === 0) return `${message} (regex used for validation is '${pattern}')`;
  // Upstream appends "'x', " per example and joins with " or ", which leaves a double space.
  const listed = examples.map((example) => `'${example}', `).join(' or ');
  return `${message} (e.g. ${listed}regex used for validation is '${pattern}')`;
}

/** `must be between LO and HI, inclusive`. */
export function inclusiveRangeMessage(low: number, high: number): string {
  return `must be between ${low} and ${high}, inclusive`;
}

const dns1123LabelPattern = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const dns1123SubdomainPattern = `${dns1123LabelPattern}(\\.${dns1123LabelPattern})*`;
const dns1035LabelPattern = '[a-z]([-a-z0-9]*[a-z0-9])?';
const dns1123LabelRegex = new RegExp(`^${dns1123LabelPattern}$`);
const dns1123SubdomainRegex = new RegExp(`^${dns1123SubdomainPattern}$`);
const dns1035LabelRegex = new RegExp(`^${dns1035LabelPattern}$`);

/** An RFC 1123 label: port names, hostnames (at most 63 characters, no dots). */
export function isDNS1123Label(value: string): string[] {
  const errors: string[] = [];
  if (byteLength(value) > 63) errors.push(maxLengthMessage(63));
  if (!dns1123LabelRegex.test(value)) {
    if (dns1123SubdomainRegex.test(value)) errors.push('must not contain dots');
    else
      errors.push(
        regexMessage(
          "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
          dns1123LabelPattern,
          'my-name',
          '123-abc',
        ),
      );
  }
  return errors;
}

/** An RFC 1123 subdomain: ExternalName targets, most object names (at most 253 characters). */
export function isDNS1123Subdomain(value: string): string[] {
  const errors: string[] = [];
  if (byteLength(value) > 253) errors.push(maxLengthMessage(253));
  if (!dns1123SubdomainRegex.test(value))
    errors.push(
      regexMessage(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        dns1123SubdomainPattern,
        'example.com',
      ),
    );
  return errors;
}

/** An RFC 1035 label, the form of Service names (starts with a letter). */
export function isDNS1035Label(value: string): string[] {
  const errors: string[] = [];
  if (byteLength(value) > 63) errors.push(maxLengthMessage(63));
  if (!dns1035LabelRegex.test(value))
    errors.push(
      regexMessage(
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        dns1035LabelPattern,
        'my-name',
        'abc-123',
      ),
    );
  return errors;
}

/**
 * An IANA service name (RFC 6335), the form of a named targetPort: at most 15 characters of
 * `[-a-z0-9]`, at least one letter, no leading, trailing or doubled hyphen.
 */
export function isValidPortName(port: string): string[] {
  const errors: string[] = [];
  if (byteLength(port) > 15) errors.push(maxLengthMessage(15));
  if (!/^[-a-z0-9]+$/.test(port))
    errors.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)');
  if (!/[a-z]/.test(port)) errors.push('must contain at least one letter (a-z)');
  if (port.includes('--')) errors.push('must not contain consecutive hyphens');
  if (port.startsWith('-') || port.endsWith('-')) errors.push('must not begin or end with a hyphen');
  return errors;
}

/** A port number, 1 through 65535. */
export function isValidPortNum(port: number): string[] {
  if (Number.isInteger(port) && port >= 1 && port <= 65535) return [];
  return [inclusiveRangeMessage(1, 65535)];
}

const labelKeyNamePattern = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const labelKeyNameRegex = new RegExp(`^${labelKeyNamePattern}$`);
const labelKeyNameMessage =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/**
 * A qualified name (label key): an optional DNS-subdomain prefix and `/`, then a name of at most
 * 63 characters. Used for selector keys, appProtocol and loadBalancerClass.
 */
export function isQualifiedName(value: string): string[] {
  const errors: string[] = [];
  const parts = value.split('/');
  let name: string;
  if (parts.length === 1) {
    name = parts[0] ?? '';
  } else if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    name = parts[1] ?? '';
    if (prefix === '') errors.push('prefix part must be non-empty');
    else errors.push(...isDNS1123Subdomain(prefix).map((message) => `prefix part ${message}`));
  } else {
    return [
      `a valid label key ${regexMessage(labelKeyNameMessage, labelKeyNamePattern, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  if (name === '') errors.push('name part must be non-empty');
  else if (byteLength(name) > 63) errors.push(`name part ${maxLengthMessage(63)}`);
  if (!labelKeyNameRegex.test(name))
    errors.push(
      `name part ${regexMessage(labelKeyNameMessage, labelKeyNamePattern, 'MyName', 'my.name', '123-abc')}`,
    );
  return errors;
}

const labelValuePattern = `(${labelKeyNamePattern})?`;
const labelValueRegex = new RegExp(`^${labelValuePattern}$`);

/** A label value: empty, or at most 63 alphanumerics, '-', '_' or '.', alphanumeric at both ends. */
export function isValidLabelValue(value: string): string[] {
  const errors: string[] = [];
  if (byteLength(value) > 63) errors.push(maxLengthMessage(63));
  if (!labelValueRegex.test(value))
    errors.push(
      regexMessage(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        labelValuePattern,
        'MyValue',
        'my_value',
        '12345',
      ),
    );
  return errors;
}

/**
 * Validates a label map (a Service selector). As upstream, every error names the map's own path,
 * not the key, and carries the offending key or value.
 */
export function validateLabels(labels: Readonly<Record<string, string>>, field: string): FieldError[] {
  const errors: FieldError[] = [];
  for (const [key, value] of Object.entries(labels)) {
    for (const message of isQualifiedName(key)) errors.push(invalid(field, key, message));
    for (const message of isValidLabelValue(value)) errors.push(invalid(field, value, message));
  }
  return errors;
}

/** Each reason a format check gave, as an Invalid error at `field` carrying `value`. */
export function invalidEach(field: string, value: string, reasons: readonly string[]): FieldError[] {
  return reasons.map((reason) => invalid(field, value, reason));
}
