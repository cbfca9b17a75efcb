import { createBatchId } from './batch-id.js';
import { EgressCapacityError } from './errors.js';
import { StoreStatsTable } from './store-stats-table.js';
import type {
  ClaimRequest,
  ClaimResult,
  ClaimedBatch,
  DeadLetterQuery,
  QueuedEvent,
  Settlement,
  Store,
  StoreStats,
  StoredDeadLetter,
  PartitionState,
  PartitionStateChange,
} from './store.js';
import { claimable, meetsExpectation } from './partition-state.js';

export interface MemoryStoreOptions {
  /** Events held at most, dead letters included (default 100,000). */
  maxEvents?: number;
  /** Payload bytes held at most, dead letters included (default 256 MiB). */
  maxBytes?: number;
}

interface Entry {
  event: QueuedEvent;
  seq: number;
}

interface FormedBatch {
  id: string;
  partition: string;
  entries: Entry[];
  /** The entries' events, as every claim of the batch hands them out. */
  events: QueuedEvent[];
  /** Ready for (re)delivery from this time when not leased. */
  availableAt: number;
  /** Set while claimed. */
  leaseUntil: number | undefined;
}

interface PartitionQueue {
  name: string;
  /** Events not yet in a batch, in arrival order; `head` skips the ones already taken. */
  waiting: Entry[];
  head: number;
  waitingBytes: number;
  /** Batches waiting for a retry (or given back), oldest events first. */
  formed: FormedBatch[];
  /** Batches being delivered. */
  leased: Set<FormedBatch>;
  /** The earliest `leaseUntil` among `leased`. */
  leaseExpiry: number;
}

/**
 * Keeps the queue in this process: for tests and throwaway use. Bounded, so a stuck destination
 * cannot grow memory without end; what it holds is lost with the process.
 */
export function memoryStore(options: MemoryStoreOptions = {}): Store {
  return new MemoryStore(options.maxEvents ?? 100_000, options.maxBytes ?? 256 * 1024 * 1024);
}

class MemoryStore implements Store {
  readonly kind = 'memory';
  readonly durable = false;
  private seq = 0;
  private heldEvents = 0;
  private heldBytes = 0;
  /**
   * Queued events by id, built the first time someone asks about one event (`eventState`) and kept
   * from then on: a map of every id costs more than the rest of enqueue, and most uses never ask.
   */
  private byId: Map<string, Entry> | undefined;
  private readonly queues = new Map<string, Map<string, PartitionQueue>>();
  private readonly batches = new Map<string, FormedBatch>();
  private readonly dead = new Map<string, StoredDeadLetter>();
  /** Paused and disabled partitions, by destination and partition. */
  private readonly states = new Map<string, PartitionState>();
  /** Delivered and failed totals per destination, then partition; kept after a partition empties. */
  private readonly totals = new Map<string, Map<string, { delivered: number; failed: number }>>();

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
  ) {}

  async open(): Promise<void> {}

  admit(events: number, bytes: number): boolean {
    return this.heldEvents + events <= this.maxEvents && this.heldBytes + bytes <= this.maxBytes;
  }

  async enqueue(events: readonly QueuedEvent[]): Promise<void> {
    let bytes = 0;
    for (const event of events) bytes += event.size;
    if (!this.admit(events.length, bytes)) {
      throw new EgressCapacityError(`memory store is full (${this.heldEvents} of ${this.maxEvents} events, ${this.heldBytes} of ${this.maxBytes} bytes)`);
    }
    for (const event of events) this.add(event);
  }

  private add(event: QueuedEvent): void {
    const entry: Entry = { event, seq: ++this.seq };
    this.byId?.set(event.id, entry);
    const queue = this.queue(event.destination, event.partition);
    queue.waiting.push(entry);
    queue.waitingBytes += event.size;
    this.heldEvents += 1;
    this.heldBytes += event.size;
  }

  private queue(destination: string, partition: string): PartitionQueue {
    let partitions = this.queues.get(destination);
    if (!partitions) this.queues.set(destination, (partitions = new Map()));
    let queue = partitions.get(partition);
    if (!queue) partitions.set(partition, (queue = { name: partition, waiting: [], head: 0, waitingBytes: 0, formed: [], leased: new Set(), leaseExpiry: Number.POSITIVE_INFINITY }));
    return queue;
  }

  async claim(request: ClaimRequest): Promise<ClaimResult> {
    const batches: ClaimedBatch[] = [];
    let nextReadyAt: number | undefined;
    const later = (time: number) => {
      nextReadyAt = nextReadyAt === undefined ? time : Math.min(nextReadyAt, time);
    };
    const partitions = this.queues.get(request.destination);
    if (!partitions) return { batches, nextReadyAt };

    for (const queue of partitions.values()) {
      if (!claimable(this.states.get(stateKey(request.destination, queue.name)), request, queue.name)) continue;
      while (batches.length < request.maxBatches) {
        const formed = this.claimFormed(queue, request, later);
        if (formed === 'blocked') break;
        if (formed) {
          batches.push(formed);
          continue;
        }
        const fresh = this.claimWaiting(queue, request, later);
        if (!fresh) break;
        batches.push(fresh);
      }
      if (batches.length >= request.maxBatches) break;
    }
    // Serve partitions round-robin: the ones just served go to the back of the line.
    if (partitions.size > 1) {
      for (const batch of batches) {
        const queue = partitions.get(batch.partition);
        if (queue) {
          partitions.delete(batch.partition);
          partitions.set(batch.partition, queue);
        }
      }
    }
    return { batches, nextReadyAt };
  }

  /** A batch formed earlier (a retry, or a lease that expired), or 'blocked' when FIFO order must wait. */
  private claimFormed(queue: PartitionQueue, request: ClaimRequest, later: (time: number) => void): ClaimedBatch | 'blocked' | undefined {
    if (queue.leased.size > 0 && request.now >= queue.leaseExpiry) this.reclaimExpired(queue, request.now);
    if (request.fifo && queue.leased.size > 0) {
      later(queue.leaseExpiry);
      return 'blocked';
    }
    for (let index = 0; index < queue.formed.length; index += 1) {
      const batch = queue.formed[index]!;
      if (batch.availableAt <= request.now) {
        queue.formed.splice(index, 1);
        return this.lease(queue, batch, request);
      }
      later(batch.availableAt);
      if (request.fifo) return 'blocked';
    }
    return undefined;
  }

  /** Batches whose lease ran out (their worker died or gave up) become claimable again. */
  private reclaimExpired(queue: PartitionQueue, now: number): void {
    queue.leaseExpiry = Number.POSITIVE_INFINITY;
    for (const batch of queue.leased) {
      if (batch.leaseUntil! <= now) {
        queue.leased.delete(batch);
        batch.leaseUntil = undefined;
        batch.availableAt = 0;
        this.insertFormed(queue, batch);
      } else {
        queue.leaseExpiry = Math.min(queue.leaseExpiry, batch.leaseUntil!);
      }
    }
  }

  private claimWaiting(queue: PartitionQueue, request: ClaimRequest, later: (time: number) => void): ClaimedBatch | undefined {
    const waitingCount = queue.waiting.length - queue.head;
    if (waitingCount === 0) return undefined;
    const oldest = queue.waiting[queue.head]!;
    const ready =
      request.force ||
      waitingCount >= request.maxEvents ||
      queue.waitingBytes >= request.maxBytes ||
      request.now - oldest.event.sentAt >= request.maxDelay;
    if (!ready) {
      later(oldest.event.sentAt + request.maxDelay);
      return undefined;
    }
    const entries: Entry[] = [];
    const events: QueuedEvent[] = [];
    const ids: string[] = [];
    let bytes = 0;
    while (queue.head < queue.waiting.length && entries.length < request.maxEvents) {
      const entry = queue.waiting[queue.head]!;
      if (entries.length > 0 && bytes + entry.event.size > request.maxBytes) break;
      entries.push(entry);
      events.push(entry.event);
      ids.push(entry.event.id);
      bytes += entry.event.size;
      queue.head += 1;
    }
    queue.waitingBytes -= bytes;
    if (queue.head > 1024 && queue.head * 2 > queue.waiting.length) {
      queue.waiting = queue.waiting.slice(queue.head);
      queue.head = 0;
    }
    const batch: FormedBatch = {
      id: createBatchId(request.destination, ids),
      partition: queue.name,
      entries,
      events,
      availableAt: request.now,
      leaseUntil: undefined,
    };
    this.batches.set(batch.id, batch);
    return this.lease(queue, batch, request);
  }

  private lease(queue: PartitionQueue, batch: FormedBatch, request: ClaimRequest): ClaimedBatch {
    batch.leaseUntil = request.now + request.leaseMs;
    queue.leased.add(batch);
    queue.leaseExpiry = Math.min(queue.leaseExpiry, batch.leaseUntil);
    // The store owns the events handed to enqueue, so it counts attempts on them in place.
    for (const event of batch.events) (event as { attempts: number }).attempts += 1;
    return { id: batch.id, destination: request.destination, partition: batch.partition, events: batch.events };
  }

  async settle(claimed: ClaimedBatch, settlement: Settlement): Promise<void> {
    const batch = this.batches.get(claimed.id);
    if (!batch) return;
    const queue = this.queue(claimed.destination, batch.partition);
    this.forget(queue, batch);
    if (settlement.delivered.length === batch.entries.length && !settlement.retry && settlement.dead.length === 0) {
      // The common case, everything arrived: no need to match ids.
      for (const entry of batch.entries) this.remove(entry);
      this.count(claimed.destination, batch.partition, batch.entries.length, 0);
      this.dropIfEmpty(claimed.destination, queue);
      return;
    }
    const byId = new Map(batch.entries.map((entry) => [entry.event.id, entry]));
    let delivered = 0;
    let failed = 0;
    for (const id of settlement.delivered) {
      const entry = byId.get(id);
      if (!entry) continue;
      this.remove(entry);
      delivered += 1;
    }
    for (const { eventId, error } of settlement.dead) {
      const entry = byId.get(eventId);
      if (!entry) continue;
      this.byId?.delete(eventId);
      this.dead.set(eventId, { event: entry.event, error, deadAt: error.at });
      failed += 1;
    }
    if (settlement.retry) {
      const entries = settlement.retry.eventIds.map((id) => byId.get(id)).filter((entry): entry is Entry => entry !== undefined);
      this.reform(queue, settlement.retry.batchId, entries, settlement.retry.availableAt);
      failed += entries.length;
    }
    this.count(claimed.destination, batch.partition, delivered, failed);
    const mentioned = new Set([...settlement.delivered, ...(settlement.retry?.eventIds ?? []), ...settlement.dead.map((death) => death.eventId)]);
    const forgotten = batch.entries.filter((entry) => !mentioned.has(entry.event.id));
    if (forgotten.length > 0) {
      this.reform(queue, createBatchId(claimed.destination, forgotten.map((entry) => entry.event.id)), forgotten, 0);
    }
    this.dropIfEmpty(claimed.destination, queue);
  }

  private count(destination: string, partition: string, delivered: number, failed: number): void {
    if (delivered + failed === 0) return;
    let partitions = this.totals.get(destination);
    if (!partitions) this.totals.set(destination, (partitions = new Map()));
    const totals = partitions.get(partition);
    if (totals) {
      totals.delivered += delivered;
      totals.failed += failed;
    } else {
      partitions.set(partition, { delivered, failed });
    }
  }

  private dropIfEmpty(destination: string, queue: PartitionQueue): void {
    if (queue.head === queue.waiting.length && queue.formed.length === 0 && queue.leased.size === 0) this.queues.get(destination)?.delete(queue.name);
  }

  /** Puts events back as a formed batch, in the order of their oldest event so FIFO partitions retry in order. */
  private reform(queue: PartitionQueue, id: string, entries: Entry[], availableAt: number): void {
    if (entries.length === 0) return;
    const batch: FormedBatch = { id, partition: queue.name, entries, events: entries.map((entry) => entry.event), availableAt, leaseUntil: undefined };
    this.batches.set(id, batch);
    this.insertFormed(queue, batch);
  }

  private insertFormed(queue: PartitionQueue, batch: FormedBatch): void {
    const position = queue.formed.findIndex((other) => other.entries[0]!.seq > batch.entries[0]!.seq);
    queue.formed.splice(position === -1 ? queue.formed.length : position, 0, batch);
  }

  async release(claimed: ClaimedBatch): Promise<void> {
    const batch = this.batches.get(claimed.id);
    if (!batch || batch.leaseUntil === undefined) return;
    const queue = this.queue(claimed.destination, batch.partition);
    queue.leased.delete(batch);
    batch.leaseUntil = undefined;
    batch.availableAt = 0;
    this.insertFormed(queue, batch);
    for (const entry of batch.entries) (entry.event as { attempts: number }).attempts = Math.max(0, entry.event.attempts - 1);
  }

  private forget(queue: PartitionQueue, batch: FormedBatch): void {
    this.batches.delete(batch.id);
    if (queue.leased.delete(batch)) return;
    const index = queue.formed.indexOf(batch);
    if (index !== -1) queue.formed.splice(index, 1);
  }

  private remove(entry: Entry): void {
    this.byId?.delete(entry.event.id);
    this.heldEvents -= 1;
    this.heldBytes -= entry.event.size;
  }

  async watermark(): Promise<number> {
    return this.seq;
  }

  async pendingAtOrBelow(mark: number): Promise<boolean> {
    // Each partition keeps its events in arrival order, and so does every batch: looking at the
    // first of each is enough, and costs partitions plus batches rather than events.
    for (const queue of this.allQueues()) {
      if (queue.head < queue.waiting.length && queue.waiting[queue.head]!.seq <= mark) return true;
      for (const batch of queue.formed) if (batch.entries[0]!.seq <= mark) return true;
      for (const batch of queue.leased) if (batch.entries[0]!.seq <= mark) return true;
    }
    return false;
  }

  private *allQueues(): Iterable<PartitionQueue> {
    for (const partitions of this.queues.values()) yield* partitions.values();
  }

  async eventState(eventId: string): Promise<'pending' | 'dead' | 'gone'> {
    if (!this.byId) {
      const byId = new Map<string, Entry>();
      for (const queue of this.allQueues()) {
        for (let index = queue.head; index < queue.waiting.length; index += 1) byId.set(queue.waiting[index]!.event.id, queue.waiting[index]!);
        for (const batch of [...queue.formed, ...queue.leased]) for (const entry of batch.entries) byId.set(entry.event.id, entry);
      }
      this.byId = byId;
    }
    if (this.byId.has(eventId)) return 'pending';
    return this.dead.has(eventId) ? 'dead' : 'gone';
  }

  async listDead(query: DeadLetterQuery): Promise<StoredDeadLetter[]> {
    const wanted = query.ids ? new Set(query.ids) : undefined;
    return [...this.dead.values()]
      .filter((letter) => (!query.destination || letter.event.destination === query.destination) && (!wanted || wanted.has(letter.event.id)))
      .filter((letter) => query.after === undefined || letter.event.id > query.after)
      .sort((a, b) => (a.event.id < b.event.id ? -1 : 1))
      .slice(0, query.limit ?? 100);
  }

  async retryDead(ids: readonly string[] | undefined, query: { destination?: string; now: number }): Promise<number> {
    const letters = this.selectDead(ids, query.destination);
    for (const letter of letters) {
      this.dead.delete(letter.event.id);
      this.heldEvents -= 1;
      this.heldBytes -= letter.event.size;
      this.add({ ...letter.event, attempts: 0, sentAt: query.now });
    }
    return letters.length;
  }

  async purgeDead(ids: readonly string[] | undefined, query: { destination?: string }): Promise<number> {
    const letters = this.selectDead(ids, query.destination);
    for (const letter of letters) {
      this.dead.delete(letter.event.id);
      this.heldEvents -= 1;
      this.heldBytes -= letter.event.size;
    }
    return letters.length;
  }

  private selectDead(ids: readonly string[] | undefined, destination: string | undefined): StoredDeadLetter[] {
    const candidates = ids ? ids.map((id) => this.dead.get(id)).filter((letter) => letter !== undefined) : [...this.dead.values()];
    return candidates.filter((letter) => !destination || letter.event.destination === destination);
  }

  async stats(now: number): Promise<StoreStats[]> {
    const table = new StoreStatsTable();
    for (const [destination, partitions] of this.queues) {
      for (const queue of partitions.values()) {
        table.add(destination, queue.name, { waiting: queue.waiting.length - queue.head, oldestSentAt: queue.waiting[queue.head]?.event.sentAt });
        for (const batch of [...queue.formed, ...queue.leased]) {
          const leased = batch.leaseUntil !== undefined && batch.leaseUntil > now;
          let oldestSentAt = Number.POSITIVE_INFINITY;
          for (const entry of batch.entries) oldestSentAt = Math.min(oldestSentAt, entry.event.sentAt);
          table.add(destination, queue.name, leased ? { inFlight: batch.entries.length, oldestSentAt } : { waiting: batch.entries.length, oldestSentAt });
        }
      }
    }
    for (const letter of this.dead.values()) table.add(letter.event.destination, letter.event.partition, { dead: 1 });
    for (const [destination, partitions] of this.totals) {
      for (const [partition, totals] of partitions) table.add(destination, partition, totals);
    }
    return table.rowsWithEvents();
  }

  async partitionStates(query: { destination?: string }): Promise<PartitionState[]> {
    return [...this.states.values()].filter((state) => query.destination === undefined || state.destination === query.destination);
  }

  async setPartitionState(change: PartitionStateChange): Promise<boolean> {
    const key = stateKey(change.destination, change.partition);
    if (!meetsExpectation(this.states.get(key), change.expected)) return false;
    if (change.next) this.states.set(key, { destination: change.destination, partition: change.partition, ...change.next });
    else this.states.delete(key);
    return true;
  }

  async close(): Promise<void> {}
}

function stateKey(destination: string, partition: string): string {
  return `${destination}\n${partition}`;
}
