import { EgressConfigurationError } from './errors.js';
import { storeBackoff } from './store-backoff.js';
import type { QueuedEvent } from './store.js';
import { parseSize } from './units.js';

/** Events committed together: one unit of work, or the sends made outside any unit in one tick. */
export interface CommitGroup {
  readonly events: QueuedEvent[];
  bytes: number;
  /**
   * Sends outside a unit of work are kept and written again when the store refuses them; a unit of
   * work is refused with the store, so that its `run()` rejects while its caller still listens.
   */
  readonly kept: boolean;
  readonly done: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

export function commitGroup(kept: boolean): CommitGroup {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const done = new Promise<void>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  // Nobody has to await a receipt; a refused commit is reported through the logger and `run()`.
  done.catch(() => {});
  return { events: [], bytes: 0, kept, done, resolve, reject };
}

/** What the buffer needs from the engine around it. */
export interface CommitTarget {
  /** Writes the events in one store call, all or none, in order. */
  write(events: QueuedEvent[]): Promise<void>;
  /** The events are in the store. */
  written(events: readonly QueuedEvent[]): void;
  /** A write failed; `failures` counts the failed writes in a row, 1 for the first of a streak. */
  writeFailed(error: unknown, failures: number, keptEvents: number): void;
  /** A write succeeded after `failures` failed ones in a row. */
  recovered(failures: number, events: number): void;
  /** What a unit of work is rejected with when the store refused its events. */
  unitRefused(error: unknown, events: number): Error;
  /** Events that will never reach the store (the buffer was stopped with them inside). */
  abandoned(events: readonly QueuedEvent[], error: Error): void;
}

export interface CommitBufferLimits {
  /** Events accepted and not yet committed, at most. */
  readonly maxEvents: number;
  /** Their encoded bytes, at most. */
  readonly maxBytes: number;
}

/**
 * Default bounds: a 30 s outage at 30,000 small events/s fits, and so does a synchronous burst of a
 * few hundred thousand sends, which is all uncommitted until the loop yields.
 */
const defaultCommitBuffer: CommitBufferLimits = { maxEvents: 1_000_000, maxBytes: 256 * 1024 * 1024 };

/** The `commitBuffer` option of `createEgress`, checked, with the defaults filled in. */
export function commitBufferLimits(options: unknown): { maxEvents: number; maxBytes: number } {
  if (options === undefined) return defaultCommitBuffer;
  if (typeof options !== 'object' || options === null) throw new EgressConfigurationError('expected an object with maxEvents and/or maxBytes', 'commitBuffer');
  const { maxEvents, maxBytes } = options as { maxEvents?: unknown; maxBytes?: unknown };
  if (maxEvents !== undefined && (typeof maxEvents !== 'number' || !Number.isInteger(maxEvents) || maxEvents < 1)) {
    throw new EgressConfigurationError(`expected a whole number of events, at least 1, got ${JSON.stringify(maxEvents)}`, 'commitBuffer.maxEvents');
  }
  let bytes = defaultCommitBuffer.maxBytes;
  if (maxBytes !== undefined) {
    const parsed = parseSize(maxBytes);
    if (typeof parsed !== 'number') throw new EgressConfigurationError(parsed.error, 'commitBuffer.maxBytes');
    if (parsed < 1) throw new EgressConfigurationError('expected at least 1 byte', 'commitBuffer.maxBytes');
    bytes = parsed;
  }
  return { maxEvents: maxEvents ?? defaultCommitBuffer.maxEvents, maxBytes: bytes };
}

/** One store call carries whole groups up to about this many events, so a long outage's backlog goes in several calls. */
const maxEventsPerWrite = 10_000;

/**
 * The path from `send` to the store. Accepted events wait here, in the order they were committed,
 * until the store takes them; a store call carries every group that queued meanwhile, so a busy
 * producer pays one call per burst. When the store refuses a call, the sends in it stay at the head
 * of the queue and are written again with backoff (50 ms doubling to 5 s, with jitter) until the
 * store takes them, and nothing committed after them is handed over before they are in: events
 * never overtake earlier ones. Units of work in a refused call are refused (their `run()` rejects),
 * and so are units committed while sends wait for a retry, since the store is known to be failing.
 *
 * Memory stays bounded: everything accepted and not yet committed counts against `limits`, and
 * `send` checks `fits` before it accepts.
 */
export class CommitBuffer {
  /** Events accepted and not committed: in open units of work, queued here, or being written. */
  private heldEvents = 0;
  private heldBytes = 0;
  /** The part of `held*` not in the hands of a store call, which the store does not count yet. */
  private readonly unhanded = { events: 0, bytes: 0 };
  /** Events queued here or being written (open units of work not included). */
  private queuedEvents = 0;
  private readonly queue: CommitGroup[] = [];
  /** Store calls in progress, each with the groups it carries. */
  private readonly writing = new Set<CommitGroup[]>();
  /** Calls in progress that carry sends: nothing is handed over behind them until they land. */
  private keptWrites = 0;
  private failures = 0;
  private lastError: unknown;
  private retryTimer: NodeJS.Timeout | undefined;
  private stoppedWith: Error | undefined;
  private drainWaiters: (() => void)[] = [];
  /** Sends outside a unit of work in this turn of the event loop, submitted together on the next microtask. */
  private sendsOfThisTick: CommitGroup | undefined;
  private readonly submitSendsOfThisTick = () => {
    const group = this.sendsOfThisTick;
    this.sendsOfThisTick = undefined;
    if (group) this.submit(group);
  };

  constructor(
    private readonly target: CommitTarget,
    readonly limits: CommitBufferLimits,
  ) {}

  /** Whether one more event of `size` bytes stays within the limits. */
  fits(size: number): boolean {
    return this.heldEvents < this.limits.maxEvents && this.heldBytes + size <= this.limits.maxBytes;
  }

  /** Events accepted that the store does not count yet, for its `admit`. */
  get unhandedEvents(): number {
    return this.unhanded.events;
  }

  /** Their bytes. */
  get unhandedBytes(): number {
    return this.unhanded.bytes;
  }

  /** Events waiting for the store (committed units and sends, not open units). */
  get buffered(): number {
    return this.queuedEvents;
  }

  /** Events waiting for the store, per destination. */
  bufferedByDestination(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const group of [...[...this.writing].flat(), ...this.queue]) {
      for (const event of group.events) counts.set(event.destination, (counts.get(event.destination) ?? 0) + 1);
    }
    return counts;
  }

  /** Events accepted and not committed, open units of work included; what `limits` bounds. */
  get held(): { readonly events: number; readonly bytes: number } {
    return { events: this.heldEvents, bytes: this.heldBytes };
  }

  /** Counts one accepted event. On the path of every send, so it only adds. */
  hold(size: number): void {
    this.heldEvents += 1;
    this.heldBytes += size;
    this.unhanded.events += 1;
    this.unhanded.bytes += size;
  }

  /** Forgets the events of a unit of work that was discarded before its commit. */
  release(group: CommitGroup): void {
    this.heldEvents -= group.events.length;
    this.heldBytes -= group.bytes;
    this.unhanded.events -= group.events.length;
    this.unhanded.bytes -= group.bytes;
  }

  /** The group that sends made outside a unit of work join in this tick: one store write per burst, not per send. */
  groupOfThisTick(): CommitGroup {
    if (!this.sendsOfThisTick) {
      this.sendsOfThisTick = commitGroup(true);
      queueMicrotask(this.submitSendsOfThisTick);
    }
    return this.sendsOfThisTick;
  }

  /** Queues a group behind every group submitted before it. */
  submit(group: CommitGroup): void {
    if (group.events.length === 0) {
      group.resolve();
      return;
    }
    if (this.stoppedWith) {
      this.release(group);
      group.reject(this.stoppedWith);
      this.target.abandoned(group.events, this.stoppedWith);
      return;
    }
    this.queue.push(group);
    this.queuedEvents += group.events.length;
    if (!group.kept && this.retryTimer) {
      this.refuseUnits(this.lastError);
      return;
    }
    this.writeNext();
  }

  /** Ends the wait before the next retry: the store is known to be back. */
  retryNow(): void {
    if (!this.retryTimer) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.writeNext();
  }

  /** Resolves once nothing is queued or being written, this tick's sends included. */
  drained(): Promise<void> {
    this.submitSendsOfThisTick();
    if (this.isDrained()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Refuses everything queued and everything submitted later with `error`, reporting the events as
   * abandoned; a write in flight still lands if the store takes it. Returns how many were abandoned.
   */
  stop(error: Error): number {
    this.submitSendsOfThisTick();
    this.stoppedWith = error;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const groups = this.queue.splice(0);
    const events = this.abandon(groups, error);
    this.settleDrainWaiters();
    return events;
  }

  private isDrained(): boolean {
    return this.queue.length === 0 && this.writing.size === 0;
  }

  /**
   * Hands what is queued to the store. Units of work go at once, even while earlier units are being
   * written, so that a durable store writes overlapping units together. Behind a call that carries
   * sends nothing is handed over until it lands: if it fails, its sends are written again first, and
   * nothing committed after them may reach the store before they do.
   */
  private writeNext(): void {
    while (this.queue.length > 0 && this.keptWrites === 0 && !this.retryTimer && !this.stoppedWith) {
      let count = 0;
      let take = 0;
      while (take < this.queue.length && (take === 0 || count + this.queue[take]!.events.length <= maxEventsPerWrite)) {
        count += this.queue[take]!.events.length;
        take += 1;
      }
      this.write(this.queue.splice(0, take));
    }
    this.settleDrainWaiters();
  }

  private write(groups: CommitGroup[]): void {
    const events = groups.length === 1 ? groups[0]!.events : groups.flatMap((group) => group.events);
    const kept = groups.some((group) => group.kept);
    // From the moment the store is called it counts these events against its own capacity.
    for (const group of groups) {
      this.unhanded.events -= group.events.length;
      this.unhanded.bytes -= group.bytes;
    }
    this.writing.add(groups);
    if (kept) this.keptWrites += 1;
    let pending: Promise<void>;
    try {
      pending = this.target.write(events);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      () => this.landed(groups, events, kept),
      (error: unknown) => this.refused(groups, error, kept),
    );
  }

  private finishWrite(groups: CommitGroup[], kept: boolean): void {
    this.writing.delete(groups);
    if (kept) this.keptWrites -= 1;
  }

  private landed(groups: CommitGroup[], events: QueuedEvent[], kept: boolean): void {
    this.finishWrite(groups, kept);
    for (const group of groups) {
      this.heldEvents -= group.events.length;
      this.heldBytes -= group.bytes;
    }
    this.queuedEvents -= events.length;
    if (this.failures > 0) {
      const failures = this.failures;
      this.failures = 0;
      this.target.recovered(failures, events.length);
    }
    for (const group of groups) group.resolve();
    this.target.written(events);
    this.writeNext();
  }

  private refused(groups: CommitGroup[], error: unknown, kept: boolean): void {
    this.finishWrite(groups, kept);
    for (const group of groups) {
      this.unhanded.events += group.events.length;
      this.unhanded.bytes += group.bytes;
    }
    if (this.stoppedWith) {
      this.abandon(groups, this.stoppedWith);
      this.settleDrainWaiters();
      return;
    }
    this.failures += 1;
    this.lastError = error;
    // Sends go back to the head of the queue, ahead of everything committed after them.
    this.queue.unshift(...groups);
    this.refuseUnits(error);
    this.target.writeFailed(error, this.failures, this.queuedEvents);
    if (this.queue.length === 0) {
      // Only units of work were refused: the next commit tries the store again itself.
      this.settleDrainWaiters();
      return;
    }
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.writeNext();
    }, storeBackoff(this.failures));
  }

  /** Rejects every unit of work queued; the store is failing and a unit is never kept. */
  private refuseUnits(error: unknown): void {
    for (let index = this.queue.length - 1; index >= 0; index -= 1) {
      const group = this.queue[index]!;
      if (group.kept) continue;
      this.queue.splice(index, 1);
      this.queuedEvents -= group.events.length;
      this.release(group);
      group.reject(this.target.unitRefused(error, group.events.length));
    }
  }

  private abandon(groups: CommitGroup[], error: Error): number {
    let count = 0;
    const events: QueuedEvent[] = [];
    for (const group of groups) {
      this.queuedEvents -= group.events.length;
      this.release(group);
      group.reject(error);
      count += group.events.length;
      for (const event of group.events) events.push(event);
    }
    if (count > 0) this.target.abandoned(events, error);
    return count;
  }

  private settleDrainWaiters(): void {
    if (!this.isDrained() && !this.stoppedWith) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
  }
}
