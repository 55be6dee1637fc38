import { setImmediate as nextTurn } from 'node:timers/promises';
import type { V1ConfigMap } from '@kubernetes/client-node';
import {
  ALLOCATION_BITMAP_KEY,
  ALLOCATION_COMPONENT,
  ALLOCATION_COMPONENT_LABEL,
  ALLOCATION_FORMAT_VERSION,
  ALLOCATION_FORMAT_VERSION_KEY,
  ALLOCATION_KIND_KEY,
  ALLOCATION_RANGE_KEY,
} from '../api/allocation.ts';
import type { AllocatorSnapshot, RangeAllocator } from './allocator.ts';
import { Bitmap, BitmapFormatError } from './bitmap.ts';
import { AllocationStateError, ConflictError, RangeMismatchError } from './errors.ts';

/**
 * The three ConfigMap calls the store needs. Small on purpose: tests implement it in memory,
 * production sends plain JSON over kept-alive connections (see configmap-client.ts).
 */
export interface ConfigMapClient {
  /** The ConfigMap, or undefined when it does not exist (404). */
  get(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  /** Creates it; throws {@link ConflictError} when it already exists (409 AlreadyExists). */
  create(configMap: V1ConfigMap): Promise<V1ConfigMap>;
  /**
   * Replaces it, conditional on `metadata.resourceVersion`; throws {@link ConflictError} when
   * that is no longer current (409 Conflict).
   */
  replace(configMap: V1ConfigMap): Promise<V1ConfigMap>;
}

/** One step of a {@link ConfigMapAllocationStore.transact} call. */
export type AllocationOperation<T> =
  | { readonly op: 'allocateNext' }
  | { readonly op: 'allocate'; readonly value: T }
  | { readonly op: 'release'; readonly value: T };

/** Counters a caller can export as metrics or a benchmark can print. */
export interface AllocationStoreStats {
  /** Successful create/replace calls. */
  writes: number;
  /** Writes rejected with 409. */
  conflicts: number;
  /** GETs. */
  reads: number;
  /** Operations (transactions and updates) that completed successfully and were durable. */
  committedEntries: number;
}

/** Configuration of a {@link ConfigMapAllocationStore}. */
export interface ConfigMapAllocationStoreOptions<T extends string | number> {
  /** Where the ConfigMap lives. */
  readonly client: ConfigMapClient;
  /** Portico's namespace. */
  readonly namespace: string;
  /** ConfigMap name, see `allocationConfigMapName`. */
  readonly name: string;
  /** Makes an empty allocator over the configured range; called once per write attempt. */
  readonly newAllocator: () => RangeAllocator<T>;
  /** Give up after this many conflicting writes in a row (default 30). */
  readonly maxAttempts?: number;
  /** First conflict backoff in ms (default 2); doubles per attempt up to `maxBackoffMs`. */
  readonly initialBackoffMs?: number;
  /** Backoff ceiling in ms (default 250). */
  readonly maxBackoffMs?: number;
  /** Waits between attempts; injected by tests to run without timers. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Uniform [0, 1) for jitter; injected by tests. */
  readonly jitter?: () => number;
  /**
   * Resolves when the current turn's callers have had the chance to enqueue, so one write
   * carries all of them. Defaults to the next event-loop turn.
   */
  readonly gatherBatch?: () => Promise<void>;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

interface PendingEntry<T extends string | number> {
  /** Applies the entry to `allocator`; must leave it unchanged when it throws. */
  apply(allocator: RangeAllocator<T>): { value: unknown; changed: boolean };
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** What the store last knew: the ConfigMap (absent if it does not exist yet) and its decoded state. */
interface KnownState {
  readonly configMap: V1ConfigMap | undefined;
  readonly snapshot: AllocatorSnapshot | undefined;
  /** Read from the server during the current commit, as opposed to remembered from an earlier write. */
  readonly fresh: boolean;
}

/**
 * Persists one allocator in one ConfigMap. Every change is a compare-and-swap: the batch of
 * pending operations is applied to the state last read, and written with that state's
 * resourceVersion; on 409 the store re-reads, applies the same operations again to the new
 * state and retries after a jittered backoff. Operations that arrive while a write is in flight
 * wait and go out together in the next write, so one CAS carries many allocations.
 *
 * A caller's promise settles only after the write carrying its operation succeeded, so anything
 * returned is durable. A process that dies after the write but before the Service is stored
 * leaks the value (the repair loop reclaims it); it never hands one value out twice.
 */
export class ConfigMapAllocationStore<T extends string | number> {
  /** Counters since construction. */
  readonly stats: AllocationStoreStats = { writes: 0, conflicts: 0, reads: 0, committedEntries: 0 };
  readonly #options: ConfigMapAllocationStoreOptions<T>;
  readonly #range: { spec: string; kind: string; size: number };
  #pending: PendingEntry<T>[] = [];
  #draining = false;
  /** The last state this store wrote, which saves a GET when no other writer intervened. */
  #remembered: KnownState | undefined;

  /** @param options client, location and allocator factory */
  constructor(options: ConfigMapAllocationStoreOptions<T>) {
    this.#options = options;
    const { range } = options.newAllocator();
    this.#range = { spec: range.spec, kind: range.kind, size: range.size };
  }

  /** `namespace/name` of the ConfigMap, for messages. */
  get objectName(): string {
    return `${this.#options.namespace}/${this.#options.name}`;
  }

  /** Allocates some free value (upper band first); resolves once durable. */
  async allocateNext(): Promise<T> {
    const [value] = await this.transact([{ op: 'allocateNext' }]);
    return value!;
  }

  /** Allocates exactly `value`; rejects with AllocationError when it is taken or outside the range. */
  async allocate(value: T): Promise<void> {
    await this.transact([{ op: 'allocate', value }]);
  }

  /** Releases `value`; resolves true if it was allocated. Idempotent. */
  release(value: T): Promise<boolean> {
    return this.#enqueue((allocator) => {
      const released = allocator.release(value);
      return { value: released, changed: released };
    }) as Promise<boolean>;
  }

  /**
   * Runs several operations as one unit: either all are applied and durable, or none is and
   * the first failure is thrown. Resolves with the value each operation concerned, in order
   * (the allocated value for allocateNext).
   */
  transact(operations: readonly AllocationOperation<T>[]): Promise<T[]> {
    return this.#enqueue((allocator) => {
      const values: T[] = [];
      const undo: Array<() => void> = [];
      try {
        for (const operation of operations) {
          if (operation.op === 'allocateNext') {
            const value = allocator.allocateNext();
            undo.push(() => allocator.release(value));
            values.push(value);
          } else if (operation.op === 'allocate') {
            allocator.allocate(operation.value);
            undo.push(() => allocator.release(operation.value));
            values.push(operation.value);
          } else {
            const { value } = operation;
            if (allocator.release(value)) undo.push(() => allocator.allocate(value));
            values.push(value);
          }
        }
      } catch (error) {
        for (const step of undo.reverse()) step();
        throw error;
      }
      return { value: values, changed: undo.length > 0 };
    }) as Promise<T[]>;
  }

  /**
   * Runs `mutate` against the current durable state and writes the result with compare-and-swap.
   * On conflict `mutate` runs again on the newer state, so it must be a pure function of the
   * allocator it gets (the repair loop passes its plan here). If it throws, nothing is written.
   */
  update<R>(mutate: (allocator: RangeAllocator<T>) => R): Promise<R> {
    return this.#enqueue((allocator) => {
      const before = allocator.snapshot();
      try {
        const value = mutate(allocator);
        return { value, changed: !allocator.snapshot().bitmap.equals(before.bitmap) };
      } catch (error) {
        allocator.restore(before);
        throw error;
      }
    }) as Promise<R>;
  }

  /** The state stored on the server now (a fresh GET). */
  async read(): Promise<AllocatorSnapshot> {
    const state = await this.#load();
    const allocator = this.#options.newAllocator();
    if (state.snapshot !== undefined) allocator.restore(state.snapshot);
    return allocator.snapshot();
  }

  #enqueue(apply: PendingEntry<T>['apply']): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ apply, resolve, reject });
      if (!this.#draining) {
        this.#draining = true;
        void this.#drain();
      }
    });
  }

  async #drain(): Promise<void> {
    try {
      await (this.#options.gatherBatch ?? (() => nextTurn()))();
      while (this.#pending.length > 0) {
        const batch = this.#pending;
        this.#pending = [];
        await this.#commit(batch);
      }
    } finally {
      this.#draining = false;
    }
  }

  async #load(): Promise<KnownState> {
    const { namespace, name } = this.#options;
    this.stats.reads++;
    const configMap = await this.#options.client.get(namespace, name);
    if (configMap === undefined) return { configMap: undefined, snapshot: undefined, fresh: true };
    return { configMap, snapshot: this.#decode(configMap), fresh: true };
  }

  #decode(configMap: V1ConfigMap): AllocatorSnapshot {
    const data = configMap.data ?? {};
    const version = data[ALLOCATION_FORMAT_VERSION_KEY];
    if (version !== ALLOCATION_FORMAT_VERSION) {
      throw new AllocationStateError(
        `ConfigMap ${this.objectName}: data.${ALLOCATION_FORMAT_VERSION_KEY} is ${JSON.stringify(version ?? null)}; this version of Portico reads only "${ALLOCATION_FORMAT_VERSION}"`,
      );
    }
    const storedRange = data[ALLOCATION_RANGE_KEY];
    const storedKind = data[ALLOCATION_KIND_KEY];
    if (storedRange !== this.#range.spec || storedKind !== this.#range.kind) {
      throw new RangeMismatchError(
        `ConfigMap ${this.objectName} holds ${storedKind ?? 'unknown'} allocations for range ${storedRange ?? '(none)'}, but the configured ${this.#range.kind} range is ${this.#range.spec}; refusing to change it (restore the configured range, or delete the ConfigMap to start over and let the repair loop rebuild it)`,
      );
    }
    const encoded = configMap.binaryData?.[ALLOCATION_BITMAP_KEY];
    if (encoded === undefined) {
      throw new AllocationStateError(
        `ConfigMap ${this.objectName}: binaryData.${ALLOCATION_BITMAP_KEY} is missing`,
      );
    }
    try {
      const bitmap = Bitmap.fromBase64(encoded, this.#range.size);
      return { range: this.#range.spec, kind: this.#range.kind, bitmap };
    } catch (error) {
      if (error instanceof BitmapFormatError) {
        throw new AllocationStateError(
          `ConfigMap ${this.objectName}: binaryData.${ALLOCATION_BITMAP_KEY}: ${error.message}`,
        );
      }
      throw error;
    }
  }

  #encode(base: V1ConfigMap | undefined, allocator: RangeAllocator<T>): V1ConfigMap {
    const { namespace, name } = this.#options;
    return {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: base?.metadata ?? {
        namespace,
        name,
        labels: { [ALLOCATION_COMPONENT_LABEL]: ALLOCATION_COMPONENT },
      },
      data: {
        ...base?.data,
        [ALLOCATION_RANGE_KEY]: this.#range.spec,
        [ALLOCATION_KIND_KEY]: this.#range.kind,
        [ALLOCATION_FORMAT_VERSION_KEY]: ALLOCATION_FORMAT_VERSION,
      },
      binaryData: { ...base?.binaryData, [ALLOCATION_BITMAP_KEY]: allocator.snapshot().bitmap.toBase64() },
    };
  }

  #backoffMs(attempt: number): number {
    const initial = this.#options.initialBackoffMs ?? 2;
    const ceiling = Math.min(this.#options.maxBackoffMs ?? 250, initial * 2 ** (attempt - 1));
    // Half fixed, half random: replicas that collided once spread out instead of colliding again.
    return ceiling / 2 + (this.#options.jitter ?? Math.random)() * (ceiling / 2);
  }

  async #commit(batch: PendingEntry<T>[]): Promise<void> {
    const maxAttempts = this.#options.maxAttempts ?? 30;
    let state = this.#remembered;
    let conflicts = 0;
    const failAll = (error: unknown): void => {
      this.#remembered = undefined;
      for (const entry of batch) entry.reject(error);
    };
    for (;;) {
      if (state === undefined) {
        try {
          state = await this.#load();
        } catch (error) {
          failAll(error);
          return;
        }
      }
      const allocator = this.#options.newAllocator();
      if (state.snapshot !== undefined) allocator.restore(state.snapshot);
      const outcomes: Outcome[] = [];
      let changed = false;
      for (const entry of batch) {
        try {
          const result = entry.apply(allocator);
          changed ||= result.changed;
          outcomes.push({ ok: true, value: result.value });
        } catch (error) {
          outcomes.push({ ok: false, error });
        }
      }
      if (!changed && !state.fresh) {
        // Answers computed from remembered state may be stale ("already allocated" for a value
        // another replica has since released); confirm them against a fresh read.
        state = undefined;
        continue;
      }
      if (changed) {
        const desired = this.#encode(state.configMap, allocator);
        try {
          const written =
            state.configMap === undefined
              ? await this.#options.client.create(desired)
              : await this.#options.client.replace(desired);
          this.stats.writes++;
          this.#remembered = { configMap: written, snapshot: allocator.snapshot(), fresh: false };
        } catch (error) {
          if (!(error instanceof ConflictError)) {
            // The write may or may not have landed; without knowing, nothing may be reported
            // as allocated. Whatever did land is at worst a leak for the repair loop.
            failAll(error);
            return;
          }
          this.stats.conflicts++;
          conflicts++;
          this.#remembered = undefined;
          state = undefined;
          if (conflicts >= maxAttempts) {
            failAll(error);
            return;
          }
          await (this.#options.sleep ?? defaultSleep)(this.#backoffMs(conflicts));
          continue;
        }
      }
      for (let i = 0; i < batch.length; i++) {
        const outcome = outcomes[i]!;
        if (outcome.ok) {
          this.stats.committedEntries++;
          batch[i]!.resolve(outcome.value);
        } else {
          batch[i]!.reject(outcome.error);
        }
      }
      return;
    }
  }
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
