/**
 * Delivery latencies in logarithmic buckets (about 4 % wide), so percentiles cost constant memory
 * however many events pass.
 */
export class LatencyHistogram {
  private readonly buckets = new Map<number, number>();
  private count = 0;
  private sum = 0;

  record(milliseconds: number): void {
    const bucket = milliseconds <= 1 ? 0 : Math.ceil(Math.log(milliseconds) / Math.log(1.04));
    this.buckets.set(bucket, (this.buckets.get(bucket) ?? 0) + 1);
    this.count += 1;
    this.sum += milliseconds;
  }

  /** Adds another histogram's counts to this one. */
  merge(other: LatencyHistogram): void {
    for (const [bucket, occurrences] of other.buckets) this.buckets.set(bucket, (this.buckets.get(bucket) ?? 0) + occurrences);
    this.count += other.count;
    this.sum += other.sum;
  }

  summary(): LatencySummary | undefined {
    if (this.count === 0) return undefined;
    const sorted = [...this.buckets.entries()].sort((a, b) => a[0] - b[0]);
    const percentile = (fraction: number) => {
      const rank = Math.ceil(fraction * this.count);
      let seen = 0;
      for (const [bucket, occurrences] of sorted) {
        seen += occurrences;
        if (seen >= rank) return bucket === 0 ? 1 : Math.round(1.04 ** bucket);
      }
      return 0;
    };
    return { count: this.count, mean: Math.round(this.sum / this.count), p50: percentile(0.5), p99: percentile(0.99) };
  }
}

/** Milliseconds from `$send` to confirmed delivery. */
export interface LatencySummary {
  /** Events measured. */
  count: number;
  mean: number;
  p50: number;
  p99: number;
}
