/**
 * API errors as kube-apiserver reports them: a `Status` object with an HTTP code, a machine reason
 * and a message phrased the way Kubernetes phrases it, so clients that switch on reason (client-go,
 * client-node, kubectl) behave as they would against a real cluster.
 */

/** One field-level cause of a 422 Invalid error. */
export interface StatusCause {
  /** `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, ... */
  reason: string;
  message: string;
  field: string;
}

/** What identifies the object an error is about (the Status `details`). */
export interface StatusTarget {
  group: string;
  kind: string;
  name?: string;
}

/** An error the server turns into a `Status` response. */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string>;

  constructor(
    code: number,
    reason: string,
    message: string,
    details?: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
    this.headers = headers;
  }

  /** The meta/v1 Status body of this error. */
  toStatus(): Record<string, unknown> {
    return statusBody(this.code, this.reason, this.message, this.details);
  }
}

/** A meta/v1 Status object with status Failure. */
export function statusBody(
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  };
  if (details !== undefined) body.details = details;
  return body;
}

/** `services "web" not found`, the plural qualified by group for non-core kinds. */
function qualified(resource: string, group: string): string {
  return group === '' ? resource : `${resource}.${group}`;
}

/** 404 NotFound for one object. */
export function notFound(resource: string, group: string, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualified(resource, group)} "${name}" not found`, {
    name,
    group,
    kind: resource,
  });
}

/** 404 NotFound for a URL the server does not serve. */
export function pathNotFound(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
}

/** 409 AlreadyExists on create. */
export function alreadyExists(resource: string, group: string, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualified(resource, group)} "${name}" already exists`, {
    name,
    group,
    kind: resource,
  });
}

/** 409 Conflict: an update or delete precondition (resourceVersion, uid) does not hold. */
export function conflict(resource: string, group: string, name: string, why: string): ApiError {
  return new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(resource, group)} "${name}": ${why}`,
    { name, group, kind: resource },
  );
}

/** The message of a stale-resourceVersion conflict, as kube-apiserver words it. */
export const MODIFIED_CONFLICT =
  'the object has been modified; please apply your changes to the latest version and try again';

/** 422 Invalid with one cause per bad field. */
export function invalid(kind: string, group: string, name: string, causes: StatusCause[]): ApiError {
  const summary = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
  const qualifiedKind = group === '' ? kind : `${kind}.${group}`;
  const message = `${qualifiedKind} "${name}" is invalid: ${causes.length > 1 ? `[${summary}]` : summary}`;
  return new ApiError(422, 'Invalid', message, { name, group, kind, causes });
}

/** 400 BadRequest. */
export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

/** 410 Expired: a resourceVersion or continue token older than the history window. */
export function expired(message: string): ApiError {
  return new ApiError(410, 'Expired', message);
}

/** 405 MethodNotAllowed for a verb the resource does not serve. */
export function methodNotSupported(resource: string, group: string, verb: string): ApiError {
  return new ApiError(
    405,
    'MethodNotAllowed',
    `the server does not allow this method on the requested resource`,
    { group, kind: resource, causes: [{ reason: 'MethodNotAllowed', message: `${verb} is not supported` }] },
  );
}

/** 415 UnsupportedMediaType for a body content type the endpoint does not take. */
export function unsupportedMediaType(contentType: string, allowed: readonly string[]): ApiError {
  return new ApiError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${allowed.join(', ')}`,
    { causes: [{ reason: 'UnsupportedMediaType', message: contentType }] },
  );
}

/** 401 Unauthorized. */
export function unauthorized(): ApiError {
  return new ApiError(401, 'Unauthorized', 'Unauthorized');
}

/** 403 Forbidden with Kubernetes' `<resource> "<name>" is forbidden: <why>` wording. */
export function forbidden(resource: string, group: string, name: string, why: string): ApiError {
  return new ApiError(403, 'Forbidden', `${qualified(resource, group)} "${name}" is forbidden: ${why}`, {
    name,
    group,
    kind: resource,
  });
}
