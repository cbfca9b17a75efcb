import { CircuitBreaker } from './circuit-breaker.js';
import type { ResolvedCircuitPolicy } from './circuit-policy.js';
import type { EventHub } from './egress-events.js';
import type { Logger } from './logger.js';
import { EarliestTimer } from './earliest-timer.js';
import { EgressStoreUnavailableError } from './errors.js';
import type { ClaimedBatch, ErrorRecord, PartitionState, Store } from './store.js';

/** What partition control needs from the lane it watches. */
export interface PartitionControlHost {
  readonly store: Store;
  readonly logger: Logger;
  readonly events: EventHub;
  /** Claims one batch of the partition and starts delivering it, calling `claimed` first; resolves to false when nothing could be claimed. */
  probe(partition: string, claimed: (batchId: string) => void): Promise<boolean>;
  /** Wakes the lane: a partition delivers again. */
  wake(): void;
}

/** How a delivery ended, as the circuit breaker counts it. */
export type DeliveryVerdict = 'answered' | 'failed';

/**
 * Circuit breaking for one destination's partitions. The breakers count in this process, but the
 * pause lives in the store: once one worker pauses a partition, no worker sharing the store claims
 * it, and the probe (one batch at a time) is taken with a conditional write, so two workers never
 * probe the same partition at once. A worker that dies mid-probe holds the probe only until its
 * lease ends; then another worker probes. A failed probe gives its batch back untouched, so the
 * events of a partition whose receiver is down do not spend their attempts and die while it is down.
 */
export class PartitionControl {
  private readonly breakers = new Map<string, CircuitBreaker>();
  /** Probes this process runs: batch id to the partition state taken for it. */
  private readonly probes = new Map<string, PartitionState>();
  /** Partitions paused or disabled as this process last saw the store. */
  private readonly held = new Set<string>();
  private readonly timer = new EarliestTimer(() => void this.poll(), false);
  private polling = false;
  private stopped = false;

  constructor(
    private readonly host: PartitionControlHost,
    private readonly destination: string,
    private readonly policy: ResolvedCircuitPolicy,
    /** How long a probe holds the partition: the lane's lease. */
    private readonly probeLease: number,
  ) {}

  /** Looks at the store at once (pauses from before a restart, or from other workers), then every `probeInterval`. */
  start(): void {
    this.pollAt(Date.now());
  }

  stop(): void {
    this.stopped = true;
    this.timer.cancel();
  }

  /** Whether the batch is a probe this process runs. */
  isProbe(batchId: string): boolean {
    return this.probes.has(batchId);
  }

  /** A delivery of the batch was settled (or, a failed probe, given back). */
  settled(batch: ClaimedBatch, verdict: DeliveryVerdict, error: ErrorRecord | undefined): void {
    const probe = this.probes.get(batch.id);
    if (probe) {
      this.probes.delete(batch.id);
      this.guard(verdict === 'answered' ? this.resume(probe) : this.probeFailed(probe, error));
      return;
    }
    // A delivery that started before the partition paused says nothing new.
    if (this.held.has(batch.partition)) return;
    let breaker = this.breakers.get(batch.partition);
    if (!breaker) {
      if (verdict === 'answered') return;
      this.breakers.set(batch.partition, (breaker = new CircuitBreaker(this.policy)));
    }
    const now = Date.now();
    if (breaker.record(verdict === 'failed', now)) {
      this.breakers.delete(batch.partition);
      this.held.add(batch.partition);
      this.guard(this.pause(batch.partition, breaker.failures, error, now));
    } else if (breaker.clear) {
      this.breakers.delete(batch.partition);
    }
  }

  private async pause(partition: string, failures: number, error: ErrorRecord | undefined, now: number): Promise<void> {
    const probeAt = now + this.policy.probeInterval;
    const reason = error?.message ?? 'deliveries failed';
    const written = await this.host.store.setPartitionState!({
      destination: this.destination,
      partition,
      next: { state: 'paused', since: now, probeAt, failures, reason },
      expected: { state: 'running' },
    });
    // Another worker paused it first and said so.
    if (written) this.host.events.emit('paused', { destination: this.destination, partition, failures, reason, probeAt });
    this.pollAt(probeAt);
  }

  private async resume(probe: PartitionState): Promise<void> {
    this.held.delete(probe.partition);
    const written = await this.host.store.setPartitionState!({ destination: this.destination, partition: probe.partition, next: undefined, expected: { state: 'paused' } });
    if (written) this.host.events.emit('resumed', { destination: this.destination, partition: probe.partition, by: 'probe' });
    this.host.wake();
  }

  private async probeFailed(probe: PartitionState, error: ErrorRecord | undefined): Promise<void> {
    const now = Date.now();
    const failures = probe.failures + 1;
    const reason = error?.message ?? probe.reason;
    const limit = this.policy.disableAfter;
    const disable = limit !== undefined && ('time' in limit ? now - probe.since >= limit.time : failures >= limit.failures);
    const { destination, partition } = probe;
    if (disable) {
      const written = await this.host.store.setPartitionState!({ destination, partition, next: { state: 'disabled', since: probe.since, probeAt: 0, failures, reason }, expected: { state: 'paused' } });
      if (written) this.host.events.emit('disabled', { destination, partition, failures, reason, by: 'circuit' });
      return;
    }
    const probeAt = now + this.policy.probeInterval;
    await this.host.store.setPartitionState!({ destination, partition, next: { state: 'paused', since: probe.since, probeAt, failures, reason }, expected: { state: 'paused' } });
    this.pollAt(probeAt);
  }

  private pollAt(time: number): void {
    if (!this.stopped) this.timer.at(time);
  }

  /** Reads the destination's partition states, starts the probes that are due and plans the next look. */
  private async poll(): Promise<void> {
    if (this.polling || this.stopped) return;
    this.polling = true;
    let next = Date.now() + this.policy.probeInterval;
    try {
      const states = await this.host.store.partitionStates!({ destination: this.destination });
      this.held.clear();
      for (const state of states) this.held.add(state.partition);
      const probing = new Set([...this.probes.values()].map((probe) => probe.partition));
      for (const state of states) {
        if (state.state !== 'paused' || probing.has(state.partition) || this.stopped) continue;
        const now = Date.now();
        if (state.probeAt > now) {
          next = Math.min(next, state.probeAt);
          continue;
        }
        await this.startProbe(state, now);
      }
    } catch (error) {
      // An unreachable store is reported once per outage by the engine.
      if (!EgressStoreUnavailableError.isInstance(error)) {
        this.host.logger.error({ destination: this.destination, error }, 'could not look at the paused partitions or start a probe; looking again later');
      }
    } finally {
      this.polling = false;
    }
    this.pollAt(next);
  }

  private async startProbe(state: PartitionState, now: number): Promise<void> {
    const { destination, partition } = state;
    const taken = { ...state, probeAt: now + this.probeLease };
    // Only one worker wins the probe: the write holds only while the probe is due.
    const won = await this.host.store.setPartitionState!({
      destination,
      partition,
      next: { state: 'paused', since: state.since, probeAt: taken.probeAt, failures: state.failures, reason: state.reason },
      expected: { state: 'paused', probeDueBy: now },
    });
    if (!won) return;
    const started = await this.host.probe(partition, (batchId) => this.probes.set(batchId, taken));
    // Nothing waits in the partition: there is nothing to hammer the receiver with, so it resumes.
    if (!started) await this.resume(taken);
  }

  private guard(work: Promise<void>): void {
    work.catch((error: unknown) => this.host.logger.error({ destination: this.destination, error }, 'could not record a partition state change'));
  }
}
