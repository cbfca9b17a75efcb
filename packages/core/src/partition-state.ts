import type { PartitionState, PartitionStateChange } from './store.js';

/**
 * Whether a partition standing as `current` (undefined: running) meets a change's `expected`
 * condition: the rule every store applies in `setPartitionState`, here for stores that keep their
 * states in memory.
 */
export function meetsExpectation(current: PartitionState | undefined, expected: PartitionStateChange['expected']): boolean {
  if (expected === undefined) return true;
  if (expected.state === 'running') return current === undefined;
  if (current?.state !== expected.state) return false;
  return expected.state !== 'paused' || expected.probeDueBy === undefined || current.probeAt <= expected.probeDueBy;
}

/** Whether a claim may take batches of a partition in this state (see `ClaimRequest.partition`). */
export function claimable(state: PartitionState | undefined, request: { readonly partition?: string }, partition: string): boolean {
  if (request.partition !== undefined) return partition === request.partition && state?.state !== 'disabled';
  return state === undefined;
}
