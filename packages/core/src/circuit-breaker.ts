import type { ResolvedCircuitPolicy } from './circuit-policy.js';

/**
 * Counts one partition's delivery outcomes in this process and says when they call for a pause: a
 * run of `failures` failed deliveries, or (with `failureRatio`) a failed share at least that high
 * among at least `failures` deliveries within `window`.
 */
export class CircuitBreaker {
  private consecutive = 0;
  /** Outcomes within the window, oldest first; kept only when a ratio is set. */
  private readonly recent: { at: number; failed: boolean }[] = [];
  private failedInWindow = 0;

  constructor(private readonly policy: ResolvedCircuitPolicy) {}

  /** Failed deliveries counted: in a row, or within the window when that is more. */
  get failures(): number {
    return Math.max(this.consecutive, this.failedInWindow);
  }

  /** Records one delivery; returns whether the partition should pause now (only ever on a failure). */
  record(failed: boolean, now: number): boolean {
    this.consecutive = failed ? this.consecutive + 1 : 0;
    const ratio = this.policy.failureRatio;
    if (ratio !== undefined) {
      this.recent.push({ at: now, failed });
      if (failed) this.failedInWindow += 1;
      while (this.recent.length > 0 && this.recent[0]!.at <= now - this.policy.window) {
        if (this.recent.shift()!.failed) this.failedInWindow -= 1;
      }
    }
    if (!failed) return false;
    if (this.consecutive >= this.policy.failures) return true;
    return ratio !== undefined && this.recent.length >= this.policy.failures && this.failedInWindow / this.recent.length >= ratio;
  }

  /** Whether it holds nothing worth keeping (so the partition's entry can go). */
  get clear(): boolean {
    return this.consecutive === 0 && this.failedInWindow === 0;
  }
}
