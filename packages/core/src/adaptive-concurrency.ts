/** The adaptive concurrency settings of one destination, every value present. */
export interface ResolvedAdaptiveConcurrency {
  /** The limit each partition starts with. */
  initial: number;
  /** The ceiling: the most batches the destination has in flight, all partitions together. */
  max: number;
  /** The factor a limit is multiplied by when the receiver pushes back, between 0 and 1. */
  decrease: number;
  /** Weight of the newest window in the moving average of round-trip times, between 0 and 1. */
  rttSmoothing: number;
  /** How many mean deviations above the average a window's round-trip time may be before it counts as rising. */
  rttDeviationScale: number;
}

/** Why a limit changed. */
export type LimitChangeReason = 'increase' | 'latency' | 'back-pressure';

export interface LimitChange {
  partition: string;
  limit: number;
  previous: number;
  reason: LimitChangeReason;
  /** The smoothed round-trip time the decision was measured against, milliseconds. */
  rtt: number | undefined;
}

/**
 * One partition's limit, adjusted by additive increase and multiplicative decrease as in Vector's
 * adaptive request concurrency. Responses are taken in windows one average round trip long, so a
 * burst of responses to one decision counts once: at the end of a window the limit drops (×
 * `decrease`) if the window saw back-pressure or its mean round trip rose above the average by more
 * than `rttDeviationScale` mean deviations, and grows by one if the round trip held at or below the
 * average while the limit was all in use (a limit never reached says nothing about a larger one).
 */
export class AdaptiveLimit {
  limit: number;
  inFlight = 0;
  private averageRtt: number | undefined;
  private deviation = 0;
  private windowStart = 0;
  private windowRttSum = 0;
  private windowResponses = 0;
  private windowBackPressure = false;
  private windowSaturated = false;

  constructor(
    private readonly settings: ResolvedAdaptiveConcurrency,
    now: number,
  ) {
    this.limit = Math.min(settings.initial, settings.max);
    this.windowStart = now;
  }

  get hasRoom(): boolean {
    return this.inFlight < this.limit;
  }

  get smoothedRtt(): number | undefined {
    return this.averageRtt;
  }

  started(): void {
    this.inFlight += 1;
    if (this.inFlight >= this.limit) this.windowSaturated = true;
  }

  /** A delivery that was not measured (given back at shutdown) frees its slot without a verdict. */
  released(): void {
    this.inFlight -= 1;
  }

  /**
   * A delivery ended after `rtt` milliseconds; `backPressure` when the receiver refused for now
   * (a retryable failure or a timeout). Returns the new limit's reason when the limit changed.
   */
  finished(rtt: number, backPressure: boolean, now: number): LimitChangeReason | undefined {
    this.inFlight -= 1;
    this.windowRttSum += rtt;
    this.windowResponses += 1;
    if (backPressure) this.windowBackPressure = true;
    // The first response closes the first window at once, so the average starts from a measurement.
    if (this.averageRtt !== undefined && now - this.windowStart < this.averageRtt) return undefined;
    return this.closeWindow(now);
  }

  private closeWindow(now: number): LimitChangeReason | undefined {
    const { settings } = this;
    const current = this.windowRttSum / this.windowResponses;
    const average = this.averageRtt;
    let reason: LimitChangeReason | undefined;
    const previous = this.limit;
    if (this.windowBackPressure) {
      reason = 'back-pressure';
    } else if (average !== undefined && current > average + settings.rttDeviationScale * this.deviation) {
      reason = 'latency';
    } else if ((average === undefined || current <= average) && this.windowSaturated && this.limit < settings.max) {
      this.limit += 1;
      reason = 'increase';
    }
    if (reason === 'back-pressure' || reason === 'latency') this.limit = Math.max(1, Math.floor(this.limit * settings.decrease));
    // Back-pressure answers are often quick refusals: they would drag the average down and make the next rise look like congestion.
    if (!this.windowBackPressure) {
      if (average === undefined) {
        this.averageRtt = current;
      } else {
        const alpha = settings.rttSmoothing;
        this.deviation = alpha * Math.abs(current - average) + (1 - alpha) * this.deviation;
        this.averageRtt = alpha * current + (1 - alpha) * average;
      }
    }
    this.windowStart = now;
    this.windowRttSum = 0;
    this.windowResponses = 0;
    this.windowBackPressure = false;
    this.windowSaturated = this.inFlight >= this.limit;
    return this.limit === previous ? undefined : reason;
  }
}

/** Partitions whose limits are kept; idle ones beyond it are forgotten and start again from `initial`. */
const maxTrackedPartitions = 10_000;

/**
 * The adaptive limits of one destination: one per partition, so a slow origin does not throttle a
 * fast one, all within the destination's ceiling (`max` in flight together).
 */
export class AdaptiveConcurrency {
  private readonly partitions = new Map<string, AdaptiveLimit>();

  constructor(
    readonly settings: ResolvedAdaptiveConcurrency,
    private readonly onChange: (change: LimitChange) => void,
  ) {}

  /** Whether the partition may start one more delivery (the ceiling is checked by the lane). */
  hasRoom(partition: string): boolean {
    return this.partitions.get(partition)?.hasRoom ?? true;
  }

  /**
   * How many more batches the lane may start now: the free part of every known partition's limit,
   * plus one partition's `initial` for work in a partition not seen yet.
   */
  headroom(): number {
    let free = Math.min(this.settings.initial, this.settings.max);
    for (const limit of this.partitions.values()) free += Math.max(0, limit.limit - limit.inFlight);
    return free;
  }

  started(partition: string, now: number): void {
    this.limitOf(partition, now).started();
  }

  released(partition: string): void {
    this.partitions.get(partition)?.released();
  }

  finished(partition: string, rtt: number, backPressure: boolean, now: number): void {
    const limit = this.partitions.get(partition);
    if (!limit) return;
    const previous = limit.limit;
    const reason = limit.finished(rtt, backPressure, now);
    if (reason) this.onChange({ partition, limit: limit.limit, previous, reason, rtt: limit.smoothedRtt });
  }

  /** The current limit of one partition, or of a partition not seen yet. */
  limit(partition: string): number {
    return this.partitions.get(partition)?.limit ?? Math.min(this.settings.initial, this.settings.max);
  }

  /** What all partitions may have in flight together now, within the ceiling. */
  total(): number {
    let sum = 0;
    for (const limit of this.partitions.values()) sum += limit.limit;
    return Math.min(this.settings.max, Math.max(sum, Math.min(this.settings.initial, this.settings.max)));
  }

  private limitOf(partition: string, now: number): AdaptiveLimit {
    let limit = this.partitions.get(partition);
    if (!limit) {
      if (this.partitions.size >= maxTrackedPartitions) {
        for (const [key, entry] of this.partitions) if (entry.inFlight === 0) this.partitions.delete(key);
      }
      this.partitions.set(partition, (limit = new AdaptiveLimit(this.settings, now)));
    }
    return limit;
  }
}
