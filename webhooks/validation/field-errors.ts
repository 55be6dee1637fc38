/**
 * Field-level validation errors and the 422 Invalid Status built from them, rendered the way the
 * Kubernetes API server renders them (k8s.io/apimachinery field.Error and apierrors.NewInvalid), so
 * that a client comparing text, or a user who knows kubectl's output, sees the same thing.
 */

/** The kinds of field error Kubernetes distinguishes; each maps to a StatusCause reason. */
export type FieldErrorType =
  | 'NotFound'
  | 'Required'
  | 'Duplicate'
  | 'Invalid'
  | 'NotSupported'
  | 'Forbidden'
  | 'TooLong'
  | 'TooMany'
  | 'InternalError';

/**
 * A value already written in Go syntax, for the bad values Kubernetes prints with `%#v` (slices and
 * structs), which have no natural JSON counterpart.
 */
export interface GoLiteral {
  /** The text exactly as Go's `%#v` would print it. */
  readonly goSyntax: string;
}

/**
 * The offending value of a field error. Strings are quoted, numbers and booleans printed bare,
 * `null`/`undefined` (a nil pointer) print as `null`, and a {@link GoLiteral} prints verbatim.
 */
export type FieldValue = string | number | boolean | null | undefined | GoLiteral;

/** One validation failure of one field, as `field.Error` in Kubernetes. */
export interface FieldError {
  /** What kind of failure this is. */
  readonly type: FieldErrorType;
  /** The field path, e.g. `spec.ports[0].nodePort`. */
  readonly field: string;
  /** The rejected value; ignored for Required, Forbidden, TooLong and InternalError. */
  readonly value?: FieldValue;
  /** Why the value is wrong and what is allowed; may be empty. */
  readonly detail: string;
}

const causeReasons: Record<FieldErrorType, string> = {
  NotFound: 'FieldValueNotFound',
  Required: 'FieldValueRequired',
  Duplicate: 'FieldValueDuplicate',
  Invalid: 'FieldValueInvalid',
  NotSupported: 'FieldValueNotSupported',
  Forbidden: 'FieldValueForbidden',
  TooLong: 'FieldValueTooLong',
  TooMany: 'FieldValueTooMany',
  InternalError: 'InternalError',
};

const typeTexts: Record<FieldErrorType, string> = {
  NotFound: 'Not found',
  Required: 'Required value',
  Duplicate: 'Duplicate value',
  Invalid: 'Invalid value',
  NotSupported: 'Unsupported value',
  Forbidden: 'Forbidden',
  TooLong: 'Too long',
  TooMany: 'Too many',
  InternalError: 'Internal error',
};

/** A required field is missing (`Required value`). */
export function required(field: string, detail = ''): FieldError {
  return { type: 'Required', field, detail };
}

/** A value is malformed or out of bounds (`Invalid value: <value>: <detail>`). */
export function invalid(field: string, value: FieldValue, detail: string): FieldError {
  return { type: 'Invalid', field, value, detail };
}

/** A value that must be unique is repeated (`Duplicate value: <value>`). */
export function duplicate(field: string, value: FieldValue): FieldError {
  return { type: 'Duplicate', field, value, detail: '' };
}

/** A value outside an enumeration; the allowed values are listed quoted, in the order given. */
export function notSupported(field: string, value: FieldValue, supported: readonly string[]): FieldError {
  const detail = supported.length > 0 ? `supported values: ${supported.map(goQuote).join(', ')}` : '';
  return { type: 'NotSupported', field, value, detail };
}

/** A valid value that the current combination of fields does not permit (`Forbidden: <detail>`). */
export function forbidden(field: string, detail: string): FieldError {
  return { type: 'Forbidden', field, detail };
}

/** A list holds more items than allowed (`Too many: <n>: must have at most <max> items`). */
export function tooMany(field: string, actual: number, max: number): FieldError {
  return { type: 'TooMany', field, value: actual, detail: `must have at most ${max} items` };
}

/**
 * Quotes a string as Go's `strconv.Quote` does (which is what `%q` prints): backslash escapes for
 * quotes, backslashes and C0/C1 control characters, everything printable kept as is.
 */
export function goQuote(text: string): string {
  const named: Record<string, string> = {
    '"': '\\"',
    '\\': '\\\\',
    '\x07': '\\a',
    '\b': '\\b',
    '\f': '\\f',
    '\n': '\\n',
    '\r': '\\r',
    '\t': '\\t',
    '\v': '\\v',
  };
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    const escaped = named[ch];
    if (escaped !== undefined) out += escaped;
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else if (code >= 0x80 && code < 0xa0) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/**
 * A Go slice literal as `%#v` prints it: `[]string{"a", "b"}`, or `[]string(nil)` for an absent list.
 * `elementType` names the Go element type (`string`, `core.IPFamily`).
 */
export function goSlice(values: readonly string[] | undefined, elementType = 'string'): GoLiteral {
  if (values === undefined) return { goSyntax: `[]${elementType}(nil)` };
  return { goSyntax: `[]${elementType}{${values.map(goQuote).join(', ')}}` };
}

function formatValue(value: FieldValue): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return goQuote(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return value.goSyntax;
}

/** The message without the field path, as in a StatusCause (`field.Error.ErrorBody`). */
export function formatErrorBody(error: FieldError): string {
  const valueless =
    error.type === 'Required' ||
    error.type === 'Forbidden' ||
    error.type === 'TooLong' ||
    error.type === 'InternalError';
  let body = typeTexts[error.type];
  if (!valueless) body += `: ${formatValue(error.value)}`;
  if (error.detail !== '') body += `: ${error.detail}`;
  return body;
}

/** The full message, e.g. `spec.ports[1].name: Duplicate value: "http"`. */
export function formatFieldError(error: FieldError): string {
  return `${error.field}: ${formatErrorBody(error)}`;
}

/**
 * Joins errors as Kubernetes' aggregate error does: a single message bare, several in brackets
 * separated by `, `. Errors whose full message repeats an earlier one are dropped, as
 * `ErrorList.ToAggregate` drops them.
 */
export function aggregateMessage(errors: readonly FieldError[]): string {
  const messages = [...new Set(errors.map(formatFieldError))];
  if (messages.length === 1) return messages[0] ?? '';
  return `[${messages.join(', ')}]`;
}

/** One entry of `Status.details.causes`. */
export interface StatusCause {
  /** `FieldValueInvalid`, `FieldValueRequired`, … */
  readonly reason: string;
  /** The message without the field path. */
  readonly message: string;
  /** The field path. */
  readonly field: string;
}

/** A metav1.Status with reason Invalid (HTTP 422), the body an API server or webhook returns. */
export interface InvalidStatus {
  readonly apiVersion: 'v1';
  readonly kind: 'Status';
  readonly metadata: Record<string, never>;
  readonly status: 'Failure';
  readonly message: string;
  readonly reason: 'Invalid';
  readonly details: {
    readonly name: string;
    readonly group?: string;
    readonly kind: string;
    readonly causes: readonly StatusCause[];
  };
  readonly code: 422;
}

/** The API group and kind an Invalid Status names, e.g. `{group: '', kind: 'Service'}`. */
export interface GroupKind {
  /** Empty for the core group. */
  readonly group: string;
  /** The object kind. */
  readonly kind: string;
}

/**
 * Builds the 422 Status `apierrors.NewInvalid` builds: the message `Service "web" is invalid: …`
 * (the kind qualified by its group outside the core group) and one cause per error.
 */
export function invalidStatus(
  groupKind: GroupKind,
  name: string,
  errors: readonly FieldError[],
): InvalidStatus {
  const qualifiedKind = groupKind.group === '' ? groupKind.kind : `${groupKind.kind}.${groupKind.group}`;
  const message =
    errors.length === 0
      ? `${qualifiedKind} ${goQuote(name)} is invalid`
      : `${qualifiedKind} ${goQuote(name)} is invalid: ${aggregateMessage(errors)}`;
  const causes = errors.map((error) => ({
    reason: causeReasons[error.type],
    message: formatErrorBody(error),
    field: error.field,
  }));
  return {
    apiVersion: 'v1',
    kind: 'Status',
    metadata: {},
    status: 'Failure',
    message,
    reason: 'Invalid',
    details: {
      name,
      ...(groupKind.group === '' ? {} : { group: groupKind.group }),
      kind: groupKind.kind,
      causes,
    },
    code: 422,
  };
}
