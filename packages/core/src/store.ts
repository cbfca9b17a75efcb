import type { Logger } from './logger.js';

/**
 * The queue behind Egress. Everything the engine holds lives here — events waiting to be batched,
 * batches being delivered, retry times and dead letters — so a durable store loses nothing when the
 * process dies. The store forms batches (so that several workers sharing one store never put one
 * event in two batches); core decides when to ask and what happens after each delivery.
 */
export interface Store {
  /** Short name for messages and stats, e.g. `memory`, `sqlite`. */
  readonly kind: string;
  /** Whether events survive the process (memory: no). */
  readonly durable: boolean;
  /**
   * How deep a lane's pipeline may run, in multiples of its `concurrency` (1 to 8, default 1): the
   * batches it claims ahead of its free slots, and the settlements it lets trail the deliveries
   * before they hold slots. A store that pays a round trip for each claim and each settlement write
   * asks for more, so that deliveries never wait for either.
   */
  readonly claimAhead?: number;
  /**
   * Opens connections and creates or checks the schema; called before anything else. Rejects with
   * `EgressStoreUnavailableError` when the database cannot be reached: the engine then calls `open`
   * again later. Any other rejection is final (a configuration problem) and `open` is not called again.
   */
  open(context?: StoreContext): Promise<void>;
  /** Synchronous capacity check at `$send` time: may `events` more events of `bytes` in all be taken now? */
  admit(events: number, bytes: number): boolean;
  /**
   * Appends events atomically: all of them or none. Rejects with `EgressCapacityError` when full.
   * Calls are committed in call order; a store may write overlapping calls together. The events
   * count against capacity (`admit`) from the moment of the call. Rejects with
   * `EgressStoreUnavailableError` when the database cannot be reached and nothing was written: the
   * engine keeps the events and calls again with the same events, in the same order.
   */
  enqueue(events: readonly QueuedEvent[]): Promise<void>;
  /**
   * Writes events through the application's own open transaction (what the store accepts there is
   * its own: a wrapped pg client, a better-sqlite3 database), so they commit or roll back with the
   * application's rows. Returns once they are written within it; the application owns the commit,
   * so nothing is retried or spooled. Work becomes claimable when the application commits: stores
   * whose database announces it (NOTIFY) tell `subscribe` listeners, others call `ended` once they
   * see the transaction end. Throws `EgressCapacityError` when full. A store that writes
   * synchronously returns undefined, which `runSync` requires.
   */
  enqueueWithin?(transaction: unknown, events: readonly QueuedEvent[], ended: () => void): Promise<void> | void;
  /**
   * Leases up to `maxBatches` batches that are ready under the policy in the request. Rejects with
   * `EgressStoreUnavailableError` when the database cannot be reached; nothing is leased then.
   */
  claim(request: ClaimRequest): Promise<ClaimResult>;
  /**
   * Records what became of a claimed batch: delivered events leave, others wait or die. Events of
   * the batch named in none of `delivered`, `retry` and `dead` wait again, at once. The same write
   * adds to the `delivered` and `failed` totals that `stats` reports. All of it is written or none:
   * rejects with `EgressStoreUnavailableError` when the database cannot be reached, and the engine
   * settles again while the lease holds (a settlement whose lease was lost is ignored).
   */
  settle(batch: ClaimedBatch, settlement: Settlement): Promise<void>;
  /** Gives back a claimed batch untouched (same id and events), ready again at once. */
  release(batch: ClaimedBatch): Promise<void>;
  /** A mark such that every event enqueued so far is at or below it. */
  watermark(): Promise<number>;
  /** Whether any event at or below the mark is still waiting or in flight (dead letters do not count). */
  pendingAtOrBelow(mark: number): Promise<boolean>;
  /** Where an event stands: still queued, dead-lettered, or gone (delivered or purged). */
  eventState(eventId: string): Promise<'pending' | 'dead' | 'gone'>;
  /** Dead letters, oldest first. */
  listDead(query: DeadLetterQuery): Promise<StoredDeadLetter[]>;
  /** Moves dead letters (all when `ids` is undefined) back to the queue with their attempts reset; returns how many. */
  retryDead(ids: readonly string[] | undefined, query: { destination?: string; now: number }): Promise<number>;
  /** Deletes dead letters (all when `ids` is undefined); returns how many. */
  purgeDead(ids: readonly string[] | undefined, query: { destination?: string }): Promise<number>;
  /** Counts per destination and partition: every partition with events queued or dead, or with recorded totals. */
  stats(now: number): Promise<StoreStats[]>;
  /**
   * Partitions taken out of delivery (paused by the circuit breaker, or disabled), for one
   * destination or all. Optional so that stores written before it still compile; circuit breaking
   * and disabling need it.
   */
  partitionStates?(query: { destination?: string }): Promise<PartitionState[]>;
  /**
   * Writes a partition's state (`next`), or clears it (`next` undefined: back to normal delivery),
   * only if the partition stands as `expected` says; returns whether it was written. Every process
   * sharing the store sees it at its next claim: `claim` skips every partition with a state unless
   * the request names that partition (a probe), and never hands out a disabled one.
   */
  setPartitionState?(change: PartitionStateChange): Promise<boolean>;
  /** Calls `listener` when another process enqueued or released work (stores shared by several processes). */
  subscribe?(listener: (destination: string | undefined) => void): () => void;
  /**
   * Where the store stands with its database. Stores without a remote database leave it out and
   * count as connected.
   */
  status?(): StoreStatus;
  /** Closes connections; the store is not used afterwards. */
  close(): Promise<void>;
}

export interface StoreContext {
  /** Where a store reports what the engine cannot see (a lost listener connection, a failed count). */
  readonly logger: Logger;
  /** Called by the store on every change of `status().state` or of `status().spooled`. */
  readonly statusChanged?: (status: StoreStatus) => void;
}

/** Where a store stands with its database, for stats(), `egress status` and the `store` event. */
export interface StoreStatus {
  /** 'connecting' until open first succeeds, then 'connected', or 'unreachable' after an operation could not reach the database. */
  readonly state: 'connecting' | 'connected' | 'unreachable';
  /** When it entered that state, Unix milliseconds. */
  readonly since: number;
  /** Why it is unreachable, free of secrets. */
  readonly error?: string;
  /** Events kept in a local spool, not yet moved to the database (stores with a spool). */
  readonly spooled?: number;
}

/** One accepted `$send`, as it is stored. */
export interface QueuedEvent {
  /** Time-ordered UUIDv7. */
  readonly id: string;
  /** Destination name. */
  readonly destination: string;
  /** Partition key; events of different partitions never share a batch. */
  readonly partition: string;
  /** The payload serialized with `encodePayload`. */
  readonly payload: string;
  /** Encoded bytes the event adds to a batch, as the adapter measures them. */
  readonly size: number;
  /** When `$send` accepted it, Unix milliseconds. */
  readonly sentAt: number;
  /** Delivery attempts made so far, the one being made included once claimed. */
  readonly attempts: number;
  /** Trace context of the `send` (what `Tracing.sent` returned); kept with the event and its dead letter. */
  readonly trace?: string;
}

export interface ClaimRequest {
  /** Destination whose batches are wanted. */
  readonly destination: string;
  /** Current time, Unix milliseconds. */
  readonly now: number;
  /** Who claims (worker id); kept with the lease. */
  readonly owner: string;
  /** How many batches at most. */
  readonly maxBatches: number;
  /** Largest batch in events. */
  readonly maxEvents: number;
  /** Largest batch in bytes (a single larger event still forms a batch of one). */
  readonly maxBytes: number;
  /** A partition's waiting events form a batch once the oldest has waited this long... */
  readonly maxDelay: number;
  /** ...or at once when `force` is set (flush and shutdown). */
  readonly force: boolean;
  /** One batch in flight per partition, and a batch waiting for its retry holds back newer events. */
  readonly fifo: boolean;
  /** How long the claim holds; after that another worker may claim the batch again. */
  readonly leaseMs: number;
  /**
   * Only this partition, even while it is paused (the circuit breaker's probe); a disabled partition
   * still gives nothing. Without it, partitions with a state (see `setPartitionState`) are skipped.
   */
  readonly partition?: string;
}

/** A partition taken out of delivery: paused by the circuit breaker, or disabled. */
export interface PartitionState {
  readonly destination: string;
  readonly partition: string;
  /** `'paused'`: only probes are delivered. `'disabled'`: nothing is delivered until it is enabled. */
  readonly state: 'paused' | 'disabled';
  /** When the partition was paused (kept when it is then disabled), Unix milliseconds. */
  readonly since: number;
  /** When the next probe may start, Unix milliseconds (a probe in flight holds it at its lease's end). */
  readonly probeAt: number;
  /** Failed deliveries counted when it paused (in a row, or within the window of a failure ratio), plus one per failed probe. */
  readonly failures: number;
  /** Why: the last error, free of secrets, or who disabled it. */
  readonly reason: string;
}

/** A conditional write of a partition's state (see `Store.setPartitionState`). */
export interface PartitionStateChange {
  readonly destination: string;
  readonly partition: string;
  /** The new state; undefined clears it. */
  readonly next: Omit<PartitionState, 'destination' | 'partition'> | undefined;
  /**
   * Written only when the partition stands so now: `'running'` (no state), `'paused'` (with
   * `probeAt` at or before `probeDueBy` when given), or `'disabled'`. Undefined: whatever it is.
   */
  readonly expected?: { readonly state: 'running' } | { readonly state: 'paused'; readonly probeDueBy?: number } | { readonly state: 'disabled' };
}

export interface ClaimResult {
  /** The batches leased to the caller. */
  readonly batches: ClaimedBatch[];
  /** When more will be ready without new events arriving (a partition's `maxDelay`, a retry time); undefined if never. */
  readonly nextReadyAt: number | undefined;
}

export interface ClaimedBatch {
  /** Stable id, 64 hex characters (see `createBatchId`). */
  readonly id: string;
  readonly destination: string;
  readonly partition: string;
  /** Oldest first; `attempts` already counts this attempt. */
  readonly events: readonly QueuedEvent[];
  /** Opaque lease token a store may set at claim to recognise its own lease at settle; passed back unchanged. */
  readonly lease?: string;
  /** When the lease runs out, Unix milliseconds, if the store chose it (a store's own lease option); the engine starts no delivery that could outlive it. */
  readonly leaseUntil?: number;
}

/** A delivery error as stored: secrets already removed by the adapter. */
export interface ErrorRecord {
  readonly name: string;
  readonly message: string;
  /** When it happened, Unix milliseconds. */
  readonly at: number;
}

export interface Settlement {
  /** Event ids that arrived; they leave the store. */
  readonly delivered: readonly string[];
  /** Events to try again later, as one batch with this id. */
  readonly retry?: { readonly batchId: string; readonly eventIds: readonly string[]; readonly availableAt: number; readonly error: ErrorRecord };
  /** Events that will never be delivered. */
  readonly dead: readonly { readonly eventId: string; readonly error: ErrorRecord }[];
}

export interface DeadLetterQuery {
  readonly destination?: string;
  /** Only these event ids. */
  readonly ids?: readonly string[];
  /** At most this many (default 100). */
  readonly limit?: number;
  /** Event id to continue after, for paging. */
  readonly after?: string;
}

export interface StoredDeadLetter {
  readonly event: QueuedEvent;
  /** The last error. */
  readonly error: ErrorRecord;
  /** When it was dead-lettered, Unix milliseconds. */
  readonly deadAt: number;
}

export interface StoreStats {
  readonly destination: string;
  readonly partition: string;
  /** Queued and not leased (retries included). */
  readonly waiting: number;
  /** Leased to a worker. */
  readonly inFlight: number;
  /** Dead letters. */
  readonly dead: number;
  /**
   * Events `settle` has recorded as delivered, since the store was created, by every process using
   * it. Written in the same transaction as the settlement, so a settlement counts once or not at all;
   * a settlement the store ignores (a lease that was lost) counts nothing.
   */
  readonly delivered: number;
  /**
   * Failed delivery attempts `settle` has recorded, counted per event and per attempt: each event a
   * settlement sends to `retry` or `dead` adds one. An event retried twice and then dead-lettered
   * adds three. Written with the settlement, like `delivered`.
   */
  readonly failed: number;
  /** `sentAt` of the oldest queued event (waiting or in flight). */
  readonly oldestSentAt: number | undefined;
}
