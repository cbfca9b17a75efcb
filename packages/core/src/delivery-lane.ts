import { AdaptiveConcurrency } from './adaptive-concurrency.js';
import { createBatchId } from './batch-id.js';
import type { DeadLetterRouter } from './dead-letter-routing.js';
import type { AnyDestination, Batch, BatchEvent, DeliveryContext, DeliveryReport } from './destination.js';
import type { EventHub } from './egress-events.js';
import { EgressDeliveryError, EgressStoreUnavailableError, EgressTimeoutError, PermanentError, RetryableError } from './errors.js';
import type { Logger } from './logger.js';
import { decodePayload } from './payload-codec.js';
import type { ResolvedPolicy } from './policy.js';
import { TokenBucket } from './rate-limiter.js';
import { retryDelay, retryRefusal } from './retry-schedule.js';
import { storeBackoff } from './store-backoff.js';
import type { DeliveryStatistics } from './delivery-statistics.js';
import { deliveryRedactor } from './destination-secrets.js';
import type { SecretRedactor } from './secret-redaction.js';
import type { ClaimedBatch, ErrorRecord, QueuedEvent, Settlement, Store } from './store.js';
import { PartitionControl, type DeliveryVerdict } from './partition-control.js';
import { EarliestTimer } from './earliest-timer.js';
import type { DeliveryTrace, DeliveryTraceOutcome, Tracing } from './tracing.js';

/** What a lane needs from the engine around it. */
export interface LaneHost {
  readonly store: Store;
  readonly logger: Logger;
  readonly events: EventHub;
  readonly statistics: DeliveryStatistics;
  /** Identifies this process in leases. */
  readonly owner: string;
  /** The tracing hooks, when tracing is on. */
  readonly tracing: Tracing | undefined;
  /** True while a flush or shutdown wants batches closed now rather than after `maxDelay`. */
  forcing(): boolean;
  /** Called after every settlement, for flush waiters and receipts. */
  settled(outcomes: readonly EventOutcome[]): void;
  /** Whether anyone waits for individual outcomes (so they need reporting). */
  awaitsOutcomes(): boolean;
  /** A store call failed (the engine tracks whether the store is reachable). */
  storeFailed(error: unknown): void;
  /** A store call succeeded. */
  storeSucceeded(): void;
  /** Sends dead letters on where a policy routes them. */
  readonly deadLetterRouter: DeadLetterRouter;
}

export type EventOutcome = { eventId: string; status: 'delivered' } | { eventId: string; status: 'dead'; error: ErrorRecord };

/** How a delivery ended: the adapter's report, or its throw (or the engine giving up on it). */
type FlightOutcome = { report: DeliveryReport | void } | { error: unknown };

/**
 * One delivery in progress; it is also the context handed to `deliver`. The abort controller is
 * made only when the adapter reads `signal`, since most of its cost goes unused otherwise. The
 * outcome is taken once: from the adapter's promise, or from `abandon` when the engine stops
 * waiting, whichever comes first; no promise race or timer is needed per delivery.
 */
class Flight implements DeliveryContext {
  private controller: AbortController | undefined;
  private abandonedWith: { reason: unknown } | undefined;
  private finished = false;
  private readonly startedAt = performance.now();
  /** Milliseconds from the `deliver` call to the outcome, once there is one. */
  duration = 0;
  /** The attempt's trace, when tracing is on; cleared once told how the attempt ended. */
  trace: DeliveryTrace | undefined;

  constructor(
    readonly batch: ClaimedBatch,
    /** The highest attempt among the batch's events. */
    readonly attempt: number,
    readonly logger: Logger,
    /** When the lane stops waiting for the adapter. */
    readonly deadline: number,
    /** When the batch's lease runs out and another worker may claim it again. */
    readonly leaseEnds: number,
    private readonly onOutcome: (flight: Flight, outcome: FlightOutcome) => void,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abandonedWith) this.controller.abort(this.abandonedWith.reason);
    }
    return this.controller.signal;
  }

  get traceHeaders(): Readonly<Record<string, string>> | undefined {
    return this.trace?.headers;
  }

  /** Tells the attempt's trace how it ended, once; a failing hook is logged, never passed on. */
  traceEnded(outcome: DeliveryTraceOutcome): void {
    const trace = this.trace;
    if (trace === undefined) return;
    this.trace = undefined;
    try {
      trace.ended(outcome);
    } catch (error) {
      this.logger.error({ destination: this.batch.destination, batchId: this.batch.id, error }, 'tracing failed to end a delivery');
    }
  }

  get wasAbandoned(): boolean {
    return this.abandonedWith !== undefined;
  }

  /** Waits for the adapter's promise; an adapter that throws synchronously fails like one that rejects. */
  run(deliver: () => Promise<DeliveryReport | void>): void {
    let pending: Promise<DeliveryReport | void>;
    try {
      pending = deliver();
    } catch (error) {
      this.finish({ error });
      return;
    }
    pending.then(
      (report) => this.finish({ report }),
      (error: unknown) => this.finish({ error }),
    );
  }

  /** Stops waiting for the adapter at once, even if it ignores the signal, and aborts its work. */
  abandon(reason: unknown): void {
    if (this.abandonedWith || this.finished) return;
    this.abandonedWith = { reason };
    this.controller?.abort(reason);
    this.finish({ error: reason });
  }

  private finish(outcome: FlightOutcome): void {
    if (this.finished) return;
    this.finished = true;
    this.duration = performance.now() - this.startedAt;
    this.onOutcome(this, outcome);
  }
}

/**
 * How long a batch claimed ahead may wait for a slot: the lane asks for leases of `timeout` plus
 * this, so a batch that waited longer could be taken over by another worker mid-delivery.
 */
const leaseMargin = 30_000;

/** A batch claimed ahead of a free slot. */
interface Prefetched {
  readonly batch: ClaimedBatch;
  /** When the lease of a batch taken now runs out at the latest. */
  readonly leaseUntil: number;
}

/**
 * Schedules and delivers one destination's batches: asks the store for ready batches whenever
 * something may have changed (new events, a settled batch, a timer), keeps at most `concurrency`
 * deliveries in flight, honours the rate limit, and turns each outcome into a settlement.
 * Each destination has its own lane, so a slow or failing destination never holds up another.
 */
export class DeliveryLane {
  private readonly inFlight = new Set<Flight>();
  /**
   * Deliveries that ended and whose outcome the store is still recording. A delivery's slot frees
   * when the receiver answers, not when the store has written the answer down: with a shared store
   * the write takes a round trip or a group-commit window, and holding the slot for it left the
   * receiver idle that long on every delivery. Up to `trailing` settlements may trail the
   * deliveries; beyond that they hold slots, so a store that stops answering stops new deliveries.
   */
  private settling = 0;
  /**
   * Batches claimed ahead, oldest first: a claim asks for the free slots plus this many more, so a
   * slot that frees starts its next batch at once and one claim (one round trip to a shared store)
   * serves many deliveries.
   */
  private readonly prefetched: Prefetched[] = [];
  private readonly prefetch: number;
  /**
   * Settlements that may trail the deliveries before they hold slots: the store's `claimAhead` times
   * `concurrency`. A store that writes settlements in groups, one write at a time, has as many
   * waiting as deliveries end during a write and the wait before it.
   */
  private readonly trailing: number;
  /** Batches being given back to the store. */
  private givingBack = 0;
  /** Whether the last claim brought as many batches as it asked for, so more may be ready. */
  private lastClaimFull = true;
  private readonly requestBucket: TokenBucket | undefined;
  private readonly eventBucket: TokenBucket | undefined;
  private pumping = false;
  private pumpAgain = false;
  private readonly timer = new EarliestTimer(() => this.wake());
  /** One timer for every flight's deadline: flights start in deadline order, so it tracks the first. */
  private deadlineTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Failed claims in a row: the wait before the next one grows with them, and only the first is logged. */
  private claimFailures = 0;
  private readonly flightEnded = (flight: Flight, outcome: FlightOutcome) => void this.landed(flight, outcome);
  /** Circuit breaking, when the policy asks for it. */
  private readonly control: PartitionControl | undefined;
  /** Each partition's limit, when concurrency adapts to the receiver. */
  readonly adaptive: AdaptiveConcurrency | undefined;

  constructor(
    private readonly host: LaneHost,
    readonly destination: AnyDestination,
    readonly policy: ResolvedPolicy,
  ) {
    const limit = policy.rateLimit;
    const now = Date.now();
    this.requestBucket = limit?.requests !== undefined ? new TokenBucket(limit.requests, limit.per, now) : undefined;
    this.eventBucket = limit?.events !== undefined ? new TokenBucket(limit.events, limit.per, now) : undefined;
    // A rate limit spends its tokens at claim time, so a rate-limited lane claims only what it starts;
    // an adaptive lane holds only what its partitions' limits keep from starting.
    // A lane with a circuit breaker claims only one concurrency ahead: batches held when the circuit
    // opens are still delivered, and each would spend an attempt on a receiver known to be down.
    const depth = pipelineDepth(host.store.claimAhead);
    this.prefetch = limit || policy.adaptiveConcurrency ? 0 : policy.concurrency * (policy.circuit ? 1 : depth);
    this.trailing = policy.concurrency * depth;
    this.adaptive = policy.adaptiveConcurrency
      ? new AdaptiveConcurrency(policy.adaptiveConcurrency, (change) => host.events.emit('concurrency', { destination: destination.name, ...change }))
      : undefined;
    if (policy.circuit) {
      const probe = (partition: string, claimed: (batchId: string) => void) => this.probe(partition, claimed);
      const controlHost = { store: host.store, logger: host.logger, events: host.events, probe, wake: () => this.wake() };
      this.control = new PartitionControl(controlHost, destination.name, policy.circuit, policy.timeout + leaseMargin);
      this.control.start();
    }
  }

  /** Batches this process may have in flight now: the fixed limit, or the adaptive limits' sum within the ceiling. */
  get concurrencyLimit(): number {
    return this.adaptive?.total() ?? this.policy.concurrency;
  }

  /** True when nothing is being claimed, held or delivered. */
  get idle(): boolean {
    return !this.pumping && this.inFlight.size === 0 && this.settling === 0 && this.prefetched.length === 0 && this.givingBack === 0;
  }

  /** Slots taken: deliveries running, plus settlements pending beyond the `trailing` that may trail them. */
  private get slotsTaken(): number {
    return this.inFlight.size + Math.max(0, this.settling - this.trailing);
  }

  wake(): void {
    if (this.stopped) return;
    // A batch held ahead starts now, not after a claim that may be on its way to the store.
    this.startPrefetched();
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    queueMicrotask(() => void this.pump());
  }

  /** Stops claiming; aborts deliveries still running and gives their batches back to the store. */
  async stop(abortInFlight: boolean): Promise<void> {
    this.stopped = true;
    this.control?.stop();
    this.timer.cancel();
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    // Batches claimed ahead and never started go back for the next worker, untouched.
    await Promise.all(this.prefetched.splice(0).map(({ batch }) => this.giveBack(batch)));
    if (!abortInFlight) return;
    for (const flight of this.inFlight) flight.abandon(new EgressTimeoutError(`[${this.destination.name}] delivery abandoned at shutdown`));
  }

  private async giveBack(batch: ClaimedBatch): Promise<void> {
    this.givingBack += 1;
    try {
      await this.host.store.release(batch);
    } catch (error) {
      // The lease runs out instead and the batch is claimed again then.
      this.host.logger.error({ destination: this.destination.name, batchId: batch.id, error }, 'could not give back a batch claimed ahead');
    } finally {
      this.givingBack -= 1;
    }
  }

  /**
   * A delivery ended. The store is asked again only when it may hold more for this lane: its last
   * claim was cut short by the lane's own limit, the batch did not arrive whole (a retry time to
   * learn, events given back), or the partition is FIFO (its next batch is ready now). Otherwise a
   * batch held ahead starts and the lane waits for new work to be announced, so that a lane
   * delivering a trickle of events makes one claim per event, not two.
   */
  private slotFreed(outcome: FlightOutcome): void {
    if (!arrivedWhole(outcome) || this.lastClaimFull || this.policy.ordering === 'fifo') this.wake();
    else if (!this.stopped) this.startPrefetched();
  }

  /** Starts batches claimed ahead while slots are free; one whose lease could run out mid-delivery goes back instead. */
  private startPrefetched(): void {
    const now = Date.now();
    if (this.adaptive) return this.startHeld(now);
    while (this.prefetched.length > 0 && this.slotsTaken < this.policy.concurrency) {
      const { batch, leaseUntil } = this.prefetched.shift()!;
      if (now + this.policy.timeout > leaseUntil) void this.giveBack(batch);
      else this.start(batch, leaseUntil);
    }
  }

  /** With adaptive limits, a batch held ahead waits only for its own partition: the others start past it. */
  private startHeld(now: number): void {
    for (let index = 0; index < this.prefetched.length && this.slotsTaken < this.policy.concurrency; ) {
      const { batch, leaseUntil } = this.prefetched[index]!;
      if (!this.adaptive!.hasRoom(batch.partition)) {
        index += 1;
        continue;
      }
      this.prefetched.splice(index, 1);
      if (now + this.policy.timeout > leaseUntil) void this.giveBack(batch);
      else this.start(batch, leaseUntil);
    }
  }

  /** Whether a batch of this partition may start now. */
  private hasSlotFor(partition: string): boolean {
    return this.slotsTaken < this.policy.concurrency && (this.adaptive?.hasRoom(partition) ?? true);
  }

  private async pump(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        await this.claimAndDeliver();
      } while (this.pumpAgain && !this.stopped);
    } catch (error) {
      this.claimFailures += 1;
      this.host.storeFailed(error);
      // An unreachable database is logged once per outage by the engine; other failures once per streak here.
      if (this.claimFailures === 1 && !EgressStoreUnavailableError.isInstance(error)) {
        this.host.logger.error({ destination: this.destination.name, error }, 'the store failed to hand out batches; trying again with backoff');
      }
      this.wakeAt(Date.now() + storeBackoff(this.claimFailures));
    } finally {
      this.pumping = false;
    }
  }

  private async claimAndDeliver(): Promise<void> {
    const { policy } = this;
    while (!this.stopped) {
      this.startPrefetched();
      const now = Date.now();
      const ceilingFree = policy.concurrency - this.slotsTaken;
      const free = this.adaptive ? Math.min(ceilingFree, this.adaptive.headroom()) : ceilingFree;
      let maxBatches = free + this.prefetch - this.prefetched.length;
      // Batches held for a partition at its limit never take the ceiling's last places.
      if (this.adaptive) maxBatches = Math.min(free, ceilingFree - this.prefetched.length);
      let maxEvents = policy.batch.maxEvents;
      // With every slot busy, claim ahead only once half the batches held ahead have started, so
      // that each claim brings several.
      if (maxBatches < (free > 0 ? 1 : Math.max(1, Math.ceil(this.prefetch / 2)))) return;
      if (this.requestBucket) {
        const tokens = this.requestBucket.available(now);
        if (tokens < 1) return this.wakeAt(this.requestBucket.nextTokenAt(now));
        maxBatches = Math.min(maxBatches, tokens);
      }
      if (this.eventBucket) {
        const tokens = this.eventBucket.available(now);
        if (tokens < 1) return this.wakeAt(this.eventBucket.nextTokenAt(now));
        // One batch at a time, so the batch can be cut to the tokens there are.
        maxBatches = 1;
        maxEvents = Math.min(maxEvents, tokens);
      }
      const leaseMs = policy.timeout + leaseMargin;
      const result = await this.host.store.claim({
        destination: this.destination.name,
        now,
        owner: this.host.owner,
        maxBatches,
        maxEvents,
        maxBytes: policy.batch.maxBytes,
        maxDelay: policy.batch.maxDelay,
        force: this.host.forcing(),
        fifo: policy.ordering === 'fifo',
        leaseMs,
      });
      this.claimFailures = 0;
      this.host.storeSucceeded();
      if (result.nextReadyAt !== undefined) this.wakeAt(result.nextReadyAt);
      for (const batch of result.batches) {
        this.requestBucket?.take(1, now);
        this.eventBucket?.take(batch.events.length, now);
        // A store with a lease of its own (postgresStore's `leaseMs`) says when it ends.
        const leaseUntil = Math.min(now + leaseMs, batch.leaseUntil ?? Number.POSITIVE_INFINITY);
        if (this.hasSlotFor(batch.partition)) this.start(batch, leaseUntil);
        else if (this.stopped) void this.giveBack(batch);
        else this.prefetched.push({ batch, leaseUntil });
      }
      this.lastClaimFull = result.batches.length >= maxBatches;
      if (!this.lastClaimFull) return;
    }
  }

  /** Claims one batch of a paused partition and delivers it, whatever the free slots: the circuit breaker's probe. */
  private async probe(partition: string, claimed: (batchId: string) => void): Promise<boolean> {
    if (this.stopped) return true;
    const { policy } = this;
    const now = Date.now();
    const leaseMs = policy.timeout + leaseMargin;
    const result = await this.host.store.claim({
      destination: this.destination.name,
      now,
      owner: this.host.owner,
      maxBatches: 1,
      maxEvents: policy.batch.maxEvents,
      maxBytes: policy.batch.maxBytes,
      maxDelay: policy.batch.maxDelay,
      force: true,
      fifo: policy.ordering === 'fifo',
      leaseMs,
      partition,
    });
    const batch = result.batches[0];
    if (!batch) return false;
    claimed(batch.id);
    this.start(batch, Math.min(now + leaseMs, batch.leaseUntil ?? Number.POSITIVE_INFINITY));
    return true;
  }

  private wakeAt(time: number): void {
    if (!this.stopped) this.timer.at(time);
  }

  private start(claimed: ClaimedBatch, leaseEnds: number): void {
    const { destination, policy } = this;
    let attempt = 1;
    for (const event of claimed.events) attempt = Math.max(attempt, event.attempts);
    const now = Date.now();
    const flight = new Flight(claimed, attempt, this.host.logger, now + policy.timeout, leaseEnds, this.flightEnded);
    this.inFlight.add(flight);
    this.adaptive?.started(claimed.partition, now);
    this.watchDeadlines();
    const batch: Batch = {
      id: claimed.id,
      destination: destination.name,
      partition: claimed.partition,
      attempt,
      events: claimed.events.map(batchEvent),
    };
    const { tracing } = this.host;
    if (tracing === undefined) flight.run(() => destination.deliver(batch, flight));
    else this.runTraced(tracing, flight, batch);
  }

  /** Delivers with the attempt traced; tracing that fails is logged and the batch delivered untraced. */
  private runTraced(tracing: Tracing, flight: Flight, batch: Batch): void {
    const { destination } = this;
    try {
      flight.trace = tracing.delivering(batch);
    } catch (error) {
      this.host.logger.error({ destination: destination.name, batchId: batch.id, error }, 'tracing failed to start a delivery');
    }
    const trace = flight.trace;
    if (trace?.run === undefined) flight.run(() => destination.deliver(batch, flight));
    else flight.run(() => trace.run!(() => destination.deliver(batch, flight)));
  }

  /** Arms the deadline timer for the oldest flight, unless it is armed already. */
  private watchDeadlines(): void {
    if (this.deadlineTimer || this.stopped) return;
    const first = this.inFlight.values().next();
    if (first.done) return;
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      const now = Date.now();
      for (const flight of this.inFlight) {
        if (flight.deadline > now) break;
        flight.abandon(new EgressTimeoutError(`[${this.destination.name}] delivery timed out after ${this.policy.timeout} ms`));
      }
      this.watchDeadlines();
    }, Math.max(0, first.value.deadline - Date.now()));
  }

  /**
   * Records the outcome. A store that cannot be reached is asked again with backoff while the lease
   * holds, so a batch that was delivered is not delivered again just because the database blinked;
   * a settlement is all or nothing, so a retried one never counts twice or half.
   */
  private async landed(flight: Flight, outcome: FlightOutcome): Promise<void> {
    this.inFlight.delete(flight);
    this.settling += 1;
    this.measured(flight, outcome);
    // The next delivery may start while this one's outcome is written. A FIFO partition's next
    // batch is not ready before the write, so FIFO lanes wait for it; so does a claim that would
    // learn a retry time, which is only in the store once written.
    const fifo = this.policy.ordering === 'fifo';
    if (!fifo && this.settling <= this.trailing) {
      if (arrivedWhole(outcome)) this.slotFreed(outcome);
      else if (!this.stopped) this.startPrefetched();
    }
    try {
      for (let failures = 1; ; failures += 1) {
        try {
          await this.record(flight, outcome);
          if (failures > 1) this.host.storeSucceeded();
          return;
        } catch (error) {
          this.host.storeFailed(error);
          const wait = storeBackoff(failures);
          if (!EgressStoreUnavailableError.isInstance(error) || this.stopped || Date.now() + wait >= flight.leaseEnds) {
            // The lease runs out and the batch is claimed and delivered again: at least once.
            flight.traceEnded({ delivered: 0, retrying: flight.batch.events.length, dead: 0, error: unsettledError(error, 'the outcome could not be recorded; the batch is delivered again once its lease runs out') });
            this.host.logger.error(
              { destination: this.destination.name, batchId: flight.batch.id, error },
              'could not record a delivery outcome; the batch will be delivered again once its lease runs out',
            );
            return;
          }
          await sleep(wait);
        }
      }
    } finally {
      const heldSlot = this.settling > this.trailing;
      this.settling -= 1;
      if (fifo || heldSlot) this.slotFreed(outcome);
      // A retry time or events given back are in the store only now: ask it again.
      else if (!arrivedWhole(outcome)) this.wake();
    }
  }

  /** Tells the partition's adaptive limit how the delivery went: its round trip, and whether the receiver pushed back. */
  private measured(flight: Flight, outcome: FlightOutcome): void {
    const { adaptive } = this;
    if (!adaptive) return;
    const { partition } = flight.batch;
    if (this.stopped && flight.wasAbandoned) return adaptive.released(partition);
    const now = Date.now();
    // The flight's deadline is its start plus the timeout.
    const rtt = now - (flight.deadline - this.policy.timeout);
    adaptive.finished(partition, rtt, pushedBack(outcome), now);
  }

  /** Not an async function: it only hands on the store's promise, and the extra turn adds up per delivery. */
  private record(flight: Flight, outcome: FlightOutcome): Promise<void> {
    const claimed = flight.batch;
    // Shutdown cut the delivery short: give the batch back unchanged for the next start.
    if (this.stopped && flight.wasAbandoned) {
      flight.traceEnded({ delivered: 0, retrying: claimed.events.length, dead: 0, error: unsettledError((outcome as { error: unknown }).error, 'the delivery was abandoned at shutdown; the batch was given back') });
      return this.host.store.release(claimed);
    }
    let failures: Map<string, unknown> | undefined;
    if ('error' in outcome) failures = new Map(claimed.events.map((event) => [event.id, outcome.error]));
    else if (outcome.report && outcome.report.failures.length > 0) failures = new Map(outcome.report.failures.map((failure) => [failure.eventId, failure.error]));
    return this.settle(claimed, flight, failures);
  }

  private async settle(claimed: ClaimedBatch, flight: Flight, failures: Map<string, unknown> | undefined): Promise<void> {
    const { destination, policy } = this;
    const { attempt } = flight;
    const now = Date.now();
    if (!failures) {
      const delivered = claimed.events.map((event) => event.id);
      await this.host.store.settle(claimed, { delivered, dead: [] });
      this.report(claimed, flight, now, delivered, undefined, []);
      this.control?.settled(claimed, 'answered', undefined);
      return;
    }
    const delivered: string[] = [];
    const dead: { eventId: string; error: ErrorRecord }[] = [];
    const retryIds: string[] = [];
    let retryError: ErrorRecord | undefined;
    let retryAfter: number | undefined;
    let redactor: SecretRedactor | undefined;
    for (const event of claimed.events) {
      if (!failures.has(event.id)) {
        delivered.push(event.id);
        continue;
      }
      redactor ??= deliveryRedactor(destination, claimed.events.map((queued) => queued.payload));
      const failure = classify(destination.name, failures.get(event.id), now, redactor);
      if (failure.permanent) {
        dead.push({ eventId: event.id, error: failure.record });
        continue;
      }
      retryIds.push(event.id);
      retryError ??= failure.record;
      if (failure.retryAfter !== undefined) retryAfter = Math.max(retryAfter ?? 0, failure.retryAfter);
    }
    // The receiver did not answer for any event: what the circuit breaker counts as a failure.
    const verdict: DeliveryVerdict = delivered.length === 0 && retryIds.length > 0 ? 'failed' : 'answered';
    if (this.control?.isProbe(claimed.id) && retryIds.length === claimed.events.length) {
      // A failed probe spends no attempt: the events wait, paused, for the next probe.
      await this.host.store.release(claimed);
      this.control.settled(claimed, verdict, retryError);
      this.host.settled([]);
      return;
    }
    let retry: Settlement['retry'];
    if (retryIds.length > 0 && retryError) {
      const availableAt = now + retryDelay(policy.retry, attempt, retryAfter);
      const byId = new Map(claimed.events.map((event) => [event.id, event]));
      const keep: string[] = [];
      for (const id of retryIds) {
        const event = byId.get(id)!;
        const refusal = retryRefusal(policy.retry, event.attempts, event.sentAt, availableAt);
        if (refusal) dead.push({ eventId: id, error: { ...retryError, message: `${refusal}; last error: ${retryError.message}` } });
        else keep.push(id);
      }
      if (keep.length > 0) {
        const batchId = keep.length === claimed.events.length ? claimed.id : createBatchId(destination.name, keep);
        retry = { batchId, eventIds: keep, availableAt, error: retryError };
      }
    }
    // Routed before the settlement is recorded: a crash in between routes it twice, never not at all.
    if (dead.length > 0 && policy.deadLetters) {
      const routing = policy.deadLetters;
      const route = () => this.host.deadLetterRouter.route(destination, routing, claimed, dead, redactor ?? deliveryRedactor(destination, claimed.events.map((queued) => queued.payload)), now);
      // Inside the attempt's trace, so the routed record's send continues the trace that dead-lettered it.
      await (flight.trace?.run ? flight.trace.run(route) : route());
    }
    await this.host.store.settle(claimed, { delivered, retry, dead });
    this.report(claimed, flight, now, delivered, retry, dead);
    this.control?.settled(claimed, verdict, retryError);
  }

  private report(claimed: ClaimedBatch, flight: Flight, now: number, delivered: string[], retry: Settlement['retry'], dead: { eventId: string; error: ErrorRecord }[]): void {
    const { events, statistics } = this.host;
    const { attempt, duration } = flight;
    if (flight.trace !== undefined) {
      flight.traceEnded({ delivered: delivered.length, retrying: retry?.eventIds.length ?? 0, dead: dead.length, error: retry?.error ?? dead[0]?.error });
    }
    const base = { destination: this.destination.name, partition: claimed.partition, batchId: claimed.id, attempt, duration };
    const outcomes: EventOutcome[] = [];
    if (delivered.length > 0) {
      const arrived = delivered.length === claimed.events.length ? undefined : new Set(delivered);
      const sentAt: number[] = [];
      let oldest = now;
      for (const event of claimed.events) {
        if (arrived && !arrived.has(event.id)) continue;
        oldest = Math.min(oldest, event.sentAt);
        sentAt.push(event.sentAt);
      }
      statistics.delivered(this.destination.name, claimed.partition, now, sentAt);
      if (this.host.awaitsOutcomes()) for (const id of delivered) outcomes.push({ eventId: id, status: 'delivered' });
      if (events.has('delivered')) events.emit('delivered', { ...base, eventIds: delivered, latency: now - oldest, latencies: sentAt.map((at) => now - at) });
    }
    if (retry) {
      events.emit('retrying', { ...base, eventIds: [...retry.eventIds], error: retry.error, retryAt: retry.availableAt });
    }
    if (dead.length > 0) {
      // Events that died of the same error are reported together.
      const byMessage = new Map<string, { error: ErrorRecord; eventIds: string[] }>();
      for (const { eventId, error } of dead) {
        const group = byMessage.get(error.message) ?? { error, eventIds: [] };
        group.eventIds.push(eventId);
        byMessage.set(error.message, group);
        outcomes.push({ eventId, status: 'dead', error });
      }
      for (const group of byMessage.values()) events.emit('dead', { ...base, eventIds: group.eventIds, error: group.error });
    }
    this.host.settled(outcomes);
  }
}

/**
 * The event as `deliver` sees it. The payload is decoded when the adapter first reads it and kept:
 * an adapter that writes `payloadJson` as it is never pays for a parse. The getter lives on the
 * prototype because an accessor on each event (an object literal with `get payload()`) cost more
 * than the rest of handing the event over; `toJSON` keeps the payload in a serialized event.
 */
class QueuedBatchEvent implements BatchEvent {
  #decoded: { value: unknown } | undefined;

  constructor(
    readonly id: string,
    readonly payloadJson: string,
    readonly attempt: number,
    readonly sentAt: number,
    readonly trace: string | undefined,
  ) {}

  get payload(): unknown {
    this.#decoded ??= { value: decodePayload(this.payloadJson) };
    return this.#decoded.value;
  }

  toJSON(): BatchEvent {
    const event = { id: this.id, payload: this.payload, payloadJson: this.payloadJson, attempt: this.attempt, sentAt: this.sentAt };
    return this.trace === undefined ? event : { ...event, trace: this.trace };
  }
}

function batchEvent(event: QueuedEvent): BatchEvent {
  return new QueuedBatchEvent(event.id, event.payload, event.attempts, event.sentAt, event.trace);
}

/** The error a delivery's trace hears of when the attempt ended without a settlement: the error's name and a fixed message, so nothing unredacted leaks. */
function unsettledError(error: unknown, message: string): ErrorRecord {
  return { name: error instanceof Error ? error.name : 'Error', message, at: Date.now() };
}

/** The error record kept for a failure: its message passes through the redaction step before it is stored or emitted. */
function classify(destination: string, error: unknown, now: number, redactor: SecretRedactor): { permanent: boolean; retryAfter?: number; record: ErrorRecord } {
  const record = (name: string, message: string): ErrorRecord => ({ name, message: redactor.redact(message), at: now });
  if (PermanentError.isInstance(error)) return { permanent: true, record: record(error.name, error.message) };
  if (RetryableError.isInstance(error)) return { permanent: false, retryAfter: error.retryAfter, record: record(error.name, error.message) };
  if (EgressTimeoutError.isInstance(error)) return { permanent: false, record: record(error.name, error.message) };
  const wrapped = new EgressDeliveryError(destination, error);
  return { permanent: false, record: record(wrapped.name, wrapped.message) };
}

/** Whether every event of the batch arrived. */
function arrivedWhole(outcome: FlightOutcome): boolean {
  return 'report' in outcome && (!outcome.report || outcome.report.failures.length === 0);
}

/**
 * Whether the receiver refused for now rather than answered: a throw that is not permanent (a
 * retryable status such as 429 or 503, a timeout, a broken connection), or any such failure in a
 * batch's report. A permanent refusal is an answer about the event, not about load.
 */
function pushedBack(outcome: FlightOutcome): boolean {
  if ('error' in outcome) return !PermanentError.isInstance(outcome.error);
  return outcome.report?.failures.some((failure) => !PermanentError.isInstance(failure.error)) ?? false;
}

/** The store's `claimAhead`, a whole number from 1 to 8: anything else would claim nothing ahead or hoard leases. */
function pipelineDepth(claimAhead: number | undefined): number {
  if (claimAhead === undefined || !Number.isFinite(claimAhead)) return 1;
  return Math.min(8, Math.max(1, Math.floor(claimAhead)));
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
