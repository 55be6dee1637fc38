/**
 * Why a single allocation failed. `AlreadyAllocated`, `NotInRange` and `InvalidValue` are the
 * user's doing (HTTP 422 at the field); `Full` is the cluster's (HTTP 500).
 */
export type AllocationFailureReason = 'AlreadyAllocated' | 'NotInRange' | 'Full' | 'InvalidValue';

/**
 * A failed allocate or allocateNext. The message is the allocator's part of what the API server
 * prints (`provided IP is already allocated`, `range is full`, …); the webhook wraps it with the
 * field path and value.
 */
export class AllocationError extends Error {
  /** Machine-readable cause, for choosing the HTTP status and field. */
  readonly reason: AllocationFailureReason;

  /**
   * @param reason machine-readable cause
   * @param message the text a user sees
   */
  constructor(reason: AllocationFailureReason, message: string) {
    super(message);
    this.name = 'AllocationError';
    this.reason = reason;
  }
}

/** A configured range (CIDR flag, port range flag) that cannot be used; the message says why. */
export class InvalidRangeError extends Error {
  /** @param message what is wrong and what is allowed */
  constructor(message: string) {
    super(message);
    this.name = 'InvalidRangeError';
  }
}

/**
 * The stored allocation state belongs to a different range than the configured one. Nothing is
 * changed: overwriting it would forget every allocation made under the stored range.
 */
export class RangeMismatchError extends Error {
  /** @param message names the object, the stored and the configured range */
  constructor(message: string) {
    super(message);
    this.name = 'RangeMismatchError';
  }
}

/**
 * A write lost a compare-and-swap race: HTTP 409 (Conflict on update, AlreadyExists on create).
 * The writer re-reads and tries again.
 */
export class ConflictError extends Error {
  /** @param message the server's message, if any */
  constructor(message = 'the object has been modified; please apply your changes to the latest version') {
    super(message);
    this.name = 'ConflictError';
  }
}

/**
 * The stored allocation state cannot be used: unknown format version, missing or corrupt bitmap.
 * Nothing is written over it; an operator has to look.
 */
export class AllocationStateError extends Error {
  /** @param message names the object and what is wrong with it */
  constructor(message: string) {
    super(message);
    this.name = 'AllocationStateError';
  }
}
