/**
 * The AdmissionReview v1 wire format (admission.k8s.io/v1) and the responses Portico's webhooks
 * send: allowed, allowed with a JSONPatch, or denied with a metav1.Status that kube-apiserver
 * passes to the client unchanged (so a 422 Invalid from a webhook reads exactly like one from
 * the API server's own validation).
 */
import type { FieldError, GroupKind } from './validation/field-errors.ts';
import { invalidStatus } from './validation/field-errors.ts';

/** The operations an admission request can carry. */
export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

/** `request` of an AdmissionReview: the parts Portico's webhooks read. */
export interface AdmissionRequest {
  /** Copied into the response so the API server can match them. */
  readonly uid: string;
  readonly kind?: { readonly group: string; readonly version: string; readonly kind: string };
  readonly resource?: { readonly group: string; readonly version: string; readonly resource: string };
  readonly subResource?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly operation: AdmissionOperation;
  /** The object as it would be stored (after earlier mutations); absent for DELETE. */
  readonly object?: unknown;
  /** The stored object, for UPDATE and DELETE. */
  readonly oldObject?: unknown;
  /** A dry run must not cause side effects (the webhook declares sideEffects: NoneOnDryRun). */
  readonly dryRun?: boolean;
}

/** A metav1.Status as carried in `response.status` of a denial. */
export interface AdmissionStatus {
  readonly apiVersion?: 'v1';
  readonly kind?: 'Status';
  readonly metadata?: Record<string, never>;
  readonly status: 'Failure';
  readonly message: string;
  readonly reason: string;
  readonly code: number;
  readonly details?: unknown;
}

/** `response` of an AdmissionReview. */
export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: AdmissionStatus;
  patchType?: 'JSONPatch';
  /** Base64 of the JSONPatch document. */
  patch?: string;
  warnings?: string[];
}

/** An AdmissionReview as exchanged with the API server. */
export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

/** One RFC 6902 operation; Portico's patches only add, replace and remove. */
export type JsonPatchOperation =
  | { readonly op: 'add' | 'replace'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string };

/**
 * A request body that is not an AdmissionReview v1 with a request. The server answers 400:
 * kube-apiserver only sends well-formed reviews, so this is a misconfigured caller.
 */
export class MalformedReviewError extends Error {
  /** @param message what is missing */
  constructor(message: string) {
    super(message);
    this.name = 'MalformedReviewError';
  }
}

/** Checks the envelope and returns its request. */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (typeof body !== 'object' || body === null) throw new MalformedReviewError('body is not a JSON object');
  const review = body as Partial<AdmissionReview>;
  if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') {
    throw new MalformedReviewError(
      `expected apiVersion "admission.k8s.io/v1" and kind "AdmissionReview", got ${JSON.stringify(review.apiVersion)} ${JSON.stringify(review.kind)}`,
    );
  }
  const request = review.request;
  if (typeof request !== 'object' || request === null || typeof request.uid !== 'string') {
    throw new MalformedReviewError('request.uid is required');
  }
  return request;
}

/** Wraps a response in the AdmissionReview envelope. */
export function reviewOf(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

/** Admits unchanged. */
export function allow(uid: string): AdmissionResponse {
  return { uid, allowed: true };
}

/** Admits with the given changes; no patch field at all when there is nothing to change. */
export function allowWithPatch(uid: string, patch: readonly JsonPatchOperation[]): AdmissionResponse {
  if (patch.length === 0) return allow(uid);
  return {
    uid,
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
  };
}

/** Denies with a 422 Invalid naming each field, as the API server's own validation would. */
export function denyInvalid(
  uid: string,
  groupKind: GroupKind,
  name: string,
  errors: readonly FieldError[],
): AdmissionResponse {
  return { uid, allowed: false, status: invalidStatus(groupKind, name, errors) };
}

/** Denies with a 500 InternalError, the API server's answer to a full range. */
export function denyInternal(uid: string, message: string): AdmissionResponse {
  return {
    uid,
    allowed: false,
    status: {
      apiVersion: 'v1',
      kind: 'Status',
      metadata: {},
      status: 'Failure',
      message: `Internal error occurred: ${message}`,
      reason: 'InternalError',
      code: 500,
    },
  };
}

/** Escapes a key for use in a JSON pointer (RFC 6901). */
function pointerToken(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The JSONPatch turning `before` into `after`, one operation per top-level key of `spec` that
 * differs (whole values, not a deep diff: a Service spec is small and replacing `ports` as a
 * unit keeps the patch obviously correct). Keys outside `spec` are never touched by Portico.
 */
export function specPatch(
  before: { spec?: object | undefined },
  after: { spec?: object | undefined },
): JsonPatchOperation[] {
  if (before.spec === undefined) {
    return after.spec === undefined ? [] : [{ op: 'add', path: '/spec', value: after.spec }];
  }
  const old = before.spec as Record<string, unknown>;
  const next = (after.spec ?? {}) as Record<string, unknown>;
  const operations: JsonPatchOperation[] = [];
  for (const [key, value] of Object.entries(next)) {
    if (value === undefined) continue;
    const path = `/spec/${pointerToken(key)}`;
    if (old[key] === undefined) operations.push({ op: 'add', path, value });
    else if (!sameJson(old[key], value)) operations.push({ op: 'replace', path, value });
  }
  for (const key of Object.keys(old)) {
    if (old[key] !== undefined && next[key] === undefined) {
      operations.push({ op: 'remove', path: `/spec/${pointerToken(key)}` });
    }
  }
  return operations;
}
