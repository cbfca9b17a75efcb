/**
 * A token bucket refilled continuously: `capacity` tokens per `interval` ms. The bucket starts
 * full, so a burst up to the limit goes at once and the rest is spread over the interval.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly capacity: number,
    private readonly interval: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.updatedAt = now;
  }

  /** Whole tokens available now. */
  available(now: number): number {
    this.refill(now);
    return Math.floor(this.tokens);
  }

  take(count: number, now: number): void {
    this.refill(now);
    this.tokens -= count;
  }

  /** When at least one whole token will be available. */
  nextTokenAt(now: number): number {
    this.refill(now);
    if (this.tokens >= 1) return now;
    return now + Math.ceil(((1 - this.tokens) * this.interval) / this.capacity);
  }

  private refill(now: number): void {
    const elapsed = now - this.updatedAt;
    if (elapsed <= 0) return;
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.capacity) / this.interval);
    this.updatedAt = now;
  }
}
