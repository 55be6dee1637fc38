/**
 * The validating webhook for LoadBalancerIPPools: the rules of `allocators/lb-pool/pool.ts`
 * (address syntax, ranges, overlap inside the pool) plus overlap with the other pools, which the
 * CRD schema cannot express. Denials are 422 Invalid at `spec.addresses[i]`, as the API server
 * would phrase them, so `kubectl apply` of a bad pool fails at once instead of leaving a pool that
 * the controller marks Overlapping later.
 */

import { type ParsedPool, parsePool, rangesOverlap } from '../../allocators/lb-pool/pool.ts';
import {
  LOAD_BALANCER_IP_POOL_KIND,
  type LoadBalancerIPPool,
  PORTICO_GROUP,
} from '../../api/loadbalancerippool.ts';
import {
  type AdmissionRequest,
  type AdmissionResponse,
  allow,
  denyInternal,
  denyInvalid,
} from '../admission.ts';
import type { AdmissionHandler } from '../handler.ts';
import {
  type FieldError,
  formatFieldError,
  goQuote,
  goSlice,
  invalid,
  required,
} from '../validation/field-errors.ts';

/** Path the LoadBalancerIPPool webhook is served at (the chart's webhook template names it too). */
export const VALIDATE_LOADBALANCERIPPOOLS_PATH = '/validate-loadbalancerippools';

/** The group and kind a denial names: `LoadBalancerIPPool.portico.dev "name" is invalid: …`. */
export const LOAD_BALANCER_IP_POOL_GROUP_KIND = { group: PORTICO_GROUP, kind: LOAD_BALANCER_IP_POOL_KIND };

/** The pools the webhook compares against: the controller-manager's pools informer. */
export interface PoolCache {
  /** Every pool in the cache. */
  list(): readonly LoadBalancerIPPool[];
  /** False until the first list arrived; an empty cache then proves nothing. */
  hasSynced(): boolean;
}

/** `field: Invalid value: <value>: detail` or `field: Required value: detail`, as pool.ts writes them. */
const MESSAGE_PATTERN = /^([^:\s]+): (Invalid value|Required value): (.*)$/s;
/** The value part of an Invalid message: a JSON-quoted string or a number, then the detail. */
const INVALID_BODY_PATTERN = /^("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?): (.*)$/s;

/**
 * Turns one of `parsePool`'s messages back into a {@link FieldError}, so the denial carries a
 * cause per field as the API server's own validation does. pool.ts keeps its messages as text
 * because the controller writes them into pool conditions.
 */
export function poolMessageToFieldError(message: string, addresses: readonly string[]): FieldError {
  const match = MESSAGE_PATTERN.exec(message);
  if (match !== null) {
    const [, field = '', type, body = ''] = match;
    if (type === 'Required value') return required(field, body);
    const valueMatch = INVALID_BODY_PATTERN.exec(body);
    if (valueMatch !== null) {
      const [, valueText = '', detail = ''] = valueMatch;
      return invalid(field, JSON.parse(valueText) as string | number, detail);
    }
  }
  return invalid('spec.addresses', goSlice(addresses), message);
}

/**
 * The first entry of another pool that each of `pool`'s entries overlaps, one error per entry;
 * other pools are tried by name so the message is the same on every replica.
 */
function overlapErrors(pool: ParsedPool, others: readonly ParsedPool[]): FieldError[] {
  const ordered = [...others].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const errors: FieldError[] = [];
  for (const range of pool.ranges) {
    for (const other of ordered) {
      const clash = other.ranges.find((candidate) => rangesOverlap(candidate, range));
      if (clash !== undefined) {
        errors.push(
          invalid(
            `spec.addresses[${range.index}]`,
            range.text,
            `overlaps ${goQuote(clash.text)} of ${LOAD_BALANCER_IP_POOL_KIND} ${goQuote(other.name)}`,
          ),
        );
        break;
      }
    }
  }
  return errors;
}

/**
 * Validates `pool` against itself and against `existing` (the pool's own stored version, by
 * name, is left out). Existing pools that do not parse are skipped: they hold no addresses.
 */
export function validateLoadBalancerIPPool(
  pool: LoadBalancerIPPool,
  existing: readonly LoadBalancerIPPool[],
): FieldError[] {
  const parsed = parsePool(pool);
  if (!parsed.ok) {
    return parsed.errors.map((message) => poolMessageToFieldError(message, pool.spec?.addresses ?? []));
  }
  const others: ParsedPool[] = [];
  for (const other of existing) {
    if (other.metadata.name === pool.metadata.name) continue;
    const result = parsePool(other);
    if (result.ok) others.push(result.pool);
  }
  return overlapErrors(parsed.pool, others);
}

/**
 * On UPDATE only errors the stored object did not already have deny the request: an overlap
 * admitted before this webhook existed must not block removing a finalizer or editing a label
 * (upstream's validation ratchets the same way for fields that became stricter).
 */
export function validateLoadBalancerIPPoolUpdate(
  pool: LoadBalancerIPPool,
  old: LoadBalancerIPPool,
  existing: readonly LoadBalancerIPPool[],
): FieldError[] {
  const before = new Set(validateLoadBalancerIPPool(old, existing).map(formatFieldError));
  return validateLoadBalancerIPPool(pool, existing).filter((error) => !before.has(formatFieldError(error)));
}

/** The validating webhook for CREATE and UPDATE of `loadbalancerippools.portico.dev`. */
export function validateLoadBalancerIPPoolsWebhook(pools: PoolCache): AdmissionHandler {
  return async (request: AdmissionRequest): Promise<AdmissionResponse> => {
    if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return allow(request.uid);
    if (request.subResource) return allow(request.uid);
    if (!pools.hasSynced()) {
      // Admitting now could let an overlapping pool in; the client retries or the user re-applies.
      return denyInternal(request.uid, 'the LoadBalancerIPPool cache has not synced yet; retry shortly');
    }
    const pool = request.object as LoadBalancerIPPool;
    const errors =
      request.operation === 'CREATE'
        ? validateLoadBalancerIPPool(pool, pools.list())
        : validateLoadBalancerIPPoolUpdate(pool, request.oldObject as LoadBalancerIPPool, pools.list());
    if (errors.length === 0) return allow(request.uid);
    return denyInvalid(
      request.uid,
      LOAD_BALANCER_IP_POOL_GROUP_KIND,
      pool.metadata?.name ?? request.name ?? '',
      errors,
    );
  };
}
