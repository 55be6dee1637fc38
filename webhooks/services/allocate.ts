import type { RangeAllocator } from '../../allocators/allocator.ts';
import { AllocationError } from '../../allocators/errors.ts';
import { type FieldError, invalid } from '../validation/field-errors.ts';
import type { AllocatorHandle, ServiceAllocators } from './allocators.ts';
import type { AllocationPlan, AllocationSlot } from './plan.ts';

/** Why a plan could not be carried out, in the terms the webhook answers with. */
export type AllocationFailure =
  | { readonly kind: 'invalid'; readonly errors: readonly FieldError[] }
  | { readonly kind: 'internal'; readonly message: string };

/** Thrown inside a store transaction to carry the slot that failed out of it. */
class SlotFailure extends Error {
  readonly slot: AllocationSlot<string | number>;
  override readonly cause: AllocationError;
  constructor(slot: AllocationSlot<string | number>, cause: AllocationError) {
    super(cause.message);
    this.slot = slot;
    this.cause = cause;
  }
}

/**
 * Applies `slots` to `allocator` in order. Pure with respect to the allocator it is given, as
 * the store's update requires (it may run again after a conflict); a failure leaves the
 * allocator as the store restores it.
 */
function fill<T extends string | number>(
  allocator: RangeAllocator<T>,
  slots: readonly AllocationSlot<T>[],
): T[] {
  const values: T[] = [];
  for (const slot of slots) {
    try {
      if (slot.value === undefined) {
        values.push(allocator.allocateNext());
      } else {
        allocator.allocate(slot.value);
        values.push(slot.value);
      }
    } catch (error) {
      if (error instanceof AllocationError)
        throw new SlotFailure(slot as unknown as AllocationSlot<string | number>, error);
      throw error;
    }
  }
  return values;
}

function describeFailure(failure: SlotFailure, noun: 'serviceIP' | 'nodePort'): AllocationFailure {
  const { slot, cause } = failure;
  if (cause.reason === 'Full') {
    return { kind: 'internal', message: `failed to allocate a ${noun}: range is full` };
  }
  if (slot.internal) {
    return {
      kind: 'internal',
      message: `failed to allocate requested HealthCheck NodePort ${String(slot.value)}: ${cause.message}`,
    };
  }
  return { kind: 'invalid', errors: [invalid(slot.field, slot.value, cause.message)] };
}

/** One allocator's part of a plan. */
interface Step {
  readonly handle: AllocatorHandle<string> | AllocatorHandle<number>;
  readonly slots: readonly AllocationSlot<string>[] | readonly AllocationSlot<number>[];
  readonly noun: 'serviceIP' | 'nodePort';
}

function stepsOf(plan: AllocationPlan, allocators: ServiceAllocators): Step[] | AllocationFailure {
  const steps: Step[] = [];
  for (const [family, slots] of plan.clusterIPs) {
    const handle = allocators.clusterIP(family);
    if (handle === undefined) {
      // Validation rejects unconfigured families first; reaching this is a bug, not user error.
      return { kind: 'internal', message: `no ${family} service CIDR is configured` };
    }
    if (slots.length > 0) steps.push({ handle, slots, noun: 'serviceIP' });
  }
  if (plan.nodePorts.length > 0)
    steps.push({ handle: allocators.nodePorts, slots: plan.nodePorts, noun: 'nodePort' });
  return steps;
}

/** Runs one allocator's part of a plan; resolves with the values in slot order. */
async function runStep(step: Step, dryRun: boolean): Promise<Array<string | number>> {
  const { store, newAllocator } = step.handle as AllocatorHandle<string | number>;
  const slots = step.slots as readonly AllocationSlot<string | number>[];
  if (!dryRun) return store.update((allocator) => fill(allocator, slots));
  const scratch = newAllocator();
  scratch.restore(await store.read());
  return fill(scratch, slots);
}

/**
 * Carries out `plan`: every value is allocated durably (its compare-and-swap write succeeded)
 * before this resolves, and written into `plan.service`. The allocators (each ClusterIP family,
 * node ports) are written concurrently, so a NodePort Service waits for one round of writes,
 * not two. When any of them fails, the values the others took in this call are released again
 * (they were never visible in any Service) and the first failure in field order (ClusterIPs,
 * then ports) is reported. If that release fails too, the values leak until the repair loop
 * reclaims them; they are never handed out twice.
 *
 * With `dryRun` nothing is written: the plan runs against a copy of the stored state, so a dry
 * run reports the same conflicts a real request would and shows plausible values.
 *
 * @returns undefined on success, or why it failed
 */
export async function allocatePlan(
  plan: AllocationPlan,
  allocators: ServiceAllocators,
  dryRun: boolean,
): Promise<AllocationFailure | undefined> {
  const steps = stepsOf(plan, allocators);
  if (!Array.isArray(steps)) return steps;
  const outcomes = await Promise.allSettled(steps.map((step) => runStep(step, dryRun)));
  const failedAt = outcomes.findIndex((outcome) => outcome.status === 'rejected');
  if (failedAt !== -1) {
    const done = steps.flatMap((step, i) => {
      const outcome = outcomes[i]!;
      return outcome.status === 'fulfilled' ? [{ step, values: outcome.value }] : [];
    });
    if (!dryRun) await rollBack(done);
    const error = (outcomes[failedAt] as PromiseRejectedResult).reason as unknown;
    if (error instanceof SlotFailure) return describeFailure(error, steps[failedAt]!.noun);
    throw error;
  }
  for (const [i, step] of steps.entries()) {
    const values = (outcomes[i] as PromiseFulfilledResult<Array<string | number>>).value;
    for (const [j, slot] of (step.slots as readonly AllocationSlot<string | number>[]).entries()) {
      slot.assign(values[j]!);
    }
  }
  return undefined;
}

async function rollBack(done: ReadonlyArray<{ step: Step; values: Array<string | number> }>): Promise<void> {
  await Promise.allSettled(
    done.map(({ step, values }) => {
      const { store } = step.handle as AllocatorHandle<string | number>;
      return store.transact(values.map((value) => ({ op: 'release' as const, value })));
    }),
  );
}
