import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import {
  EgressCapacityError,
  EgressConfigurationError,
  EgressStoreUnavailableError,
  createBatchId,
  parseDuration,
  parseSize,
  StoreStatsTable,
  claimable,
  type ClaimRequest,
  type ClaimResult,
  type ClaimedBatch,
  type DeadLetterQuery,
  type Duration,
  type Logger,
  type PartitionState,
  type PartitionStateChange,
  type QueuedEvent,
  type Settlement,
  type Size,
  type Store,
  type StoreContext,
  type StoreStats,
  type StoredDeadLetter,
} from '@egress/core';
import type Database from 'better-sqlite3';
import { forgetHolder, recoverLeases, registerHolder, tidyUp, unregisterHolder } from './recovery.js';
import { openDatabase } from './open-database.js';
import { PartitionStates } from './partition-states.js';
import { QueueFileIdentity, recreateRemovedFile } from './queue-file-rescue.js';
import { QueueFileRemovedError, asStoreError } from './sqlite-failure.js';
import { assertOpenTransaction, whenTransactionEnds } from './application-transaction.js';
import { prepareSharedSchema } from './schema.js';
import { TransactionGroup } from './transaction-group.js';
import { TurnBatch } from './turn-batch.js';

export interface SqliteStoreOptions {
  /** Path of the queue file; its directory is created when missing. Give this or `database`. */
  path?: string;
  /**
   * The application's own better-sqlite3 database, instead of `path`: the queue's tables (`egress_*`)
   * are created in it, and `egress.runSync(fn, { transaction: database })` inside the application's
   * `database.transaction(...)` enqueues with the application's rows. Its pragmas (journal mode,
   * synchronous, busy timeout) stay the application's; the store never closes it.
   */
  database?: Database.Database;
  /** Events held at most, dead letters included (default 10,000,000). */
  maxEvents?: number;
  /** Payload bytes held at most, dead letters included (default `'4GiB'`). */
  maxBytes?: Size;
  /** `'normal'` (default) survives a crash of the process; `'full'` also an OS crash or power loss, at one fsync per commit. */
  synchronous?: 'normal' | 'full';
  /** How long to wait for another connection's write lock before failing (default `'5s'`). */
  busyTimeout?: Duration;
}

/**
 * The embedded durable queue: one SQLite file (better-sqlite3, WAL) holding waiting events, leased
 * batches, retry times and dead letters. Enqueues are group-committed.
 */
export function sqliteStore(options: SqliteStoreOptions): Store {
  if (typeof options !== 'object' || options === null) throw new EgressConfigurationError('expected an options object with a "path"', '[sqlite] options');
  const known = ['path', 'database', 'maxEvents', 'maxBytes', 'synchronous', 'busyTimeout'];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new EgressConfigurationError(`unknown option (expected one of ${known.join(', ')})`, `[sqlite] option "${key}"`);
  }
  if (options.database !== undefined) return applicationDatabaseStore(options);
  if (typeof options.path !== 'string' || options.path.trim() === '') {
    throw new EgressConfigurationError('Missing required option: the path of the queue file, e.g. ".egress/queue.db", or "database", the application\'s better-sqlite3 database', '[sqlite] option "path"');
  }
  if (options.path === ':memory:' || options.path.startsWith('file:')) {
    throw new EgressConfigurationError('expected a file path; for a queue that lives in memory use memoryStore() from @egress/core', '[sqlite] option "path"');
  }
  const { maxEvents, maxBytes } = capacityOptions(options);
  const synchronous = options.synchronous ?? 'normal';
  if (synchronous !== 'normal' && synchronous !== 'full') {
    throw new EgressConfigurationError(`expected 'normal' or 'full', got ${JSON.stringify(synchronous)}`, '[sqlite] option "synchronous"');
  }
  const busyTimeout = parseDuration(options.busyTimeout ?? '5s');
  if (typeof busyTimeout !== 'number') throw new EgressConfigurationError(busyTimeout.error, '[sqlite] option "busyTimeout"');
  return new SqliteStore(resolve(options.path), maxEvents, maxBytes, synchronous, busyTimeout);
}

function capacityOptions(options: SqliteStoreOptions): { maxEvents: number; maxBytes: number } {
  const maxEvents = options.maxEvents ?? 10_000_000;
  if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) throw new EgressConfigurationError(`expected a whole number of events above 0, got ${String(options.maxEvents)}`, '[sqlite] option "maxEvents"');
  const maxBytes = parseSize(options.maxBytes ?? '4GiB');
  if (typeof maxBytes !== 'number' || maxBytes < 1) {
    throw new EgressConfigurationError(typeof maxBytes === 'number' ? 'expected at least 1 byte' : maxBytes.error, '[sqlite] option "maxBytes"');
  }
  return { maxEvents, maxBytes };
}

function applicationDatabaseStore(options: SqliteStoreOptions): Store {
  const database = options.database;
  if (typeof database !== 'object' || database === null || typeof database.prepare !== 'function' || typeof database.transaction !== 'function') {
    throw new EgressConfigurationError('expected a better-sqlite3 Database (new Database(file))', '[sqlite] option "database"');
  }
  for (const key of ['path', 'synchronous', 'busyTimeout'] as const) {
    if (options[key] !== undefined) {
      throw new EgressConfigurationError(`give either "database" or "${key}": with the application's database, its file and pragmas are the application's`, `[sqlite] option "${key}"`);
    }
  }
  const { maxEvents, maxBytes } = capacityOptions(options);
  return new SqliteStore(database.name, maxEvents, maxBytes, 'normal', 0, database);
}

/** Rows per INSERT statement when enqueuing: fewer calls into SQLite, well under its parameter limit. */
const insertChunk = 16;
/** Single-event batches formed at most per pair of statements when a claim forms several. */
const batchChunk = 16;
const insertColumns = '(seq, id, queue, payload, size, sent_at, attempts, trace)';

interface QueueRow {
  queue: number;
  partition: string;
}

interface EventRow {
  seq: number;
  id: string;
  payload: string;
  size: number;
  sent_at: number;
  attempts: number;
  trace: string | null;
}

interface DeadRow {
  id: string;
  destination: string;
  partition: string;
  payload: string;
  size: number;
  sent_at: number;
  attempts: number;
  trace: string | null;
  error_name: string;
  error_message: string;
  error_at: number;
  dead_at: number;
}

type Statements = ReturnType<typeof prepareStatements>;

interface SettlementItem {
  readonly claimed: ClaimedBatch;
  readonly settlement: Settlement;
}

/** Events and payload bytes a settlement removed from the queue. */
interface Freed {
  readonly events: number;
  readonly bytes: number;
}

interface SingleEventForm {
  readonly create: Database.Statement<[unknown[]], { batch: number; first_seq: number }>;
  readonly assign: Database.Statement<[number[]]>;
}

function prepareStatements(database: Database.Database) {
  const singleEventForms = new Map<number, SingleEventForm>();
  const values = (rows: number) => Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
  return {
    advanceSeq: database.prepare<[number], { value: number }>("UPDATE egress_meta SET value = value + ? WHERE key = 'last_seq' RETURNING value"),
    lastSeq: database.prepare<[], { value: number }>("SELECT value FROM egress_meta WHERE key = 'last_seq'"),
    insertOne: database.prepare(`INSERT INTO egress_events ${insertColumns} VALUES ${values(1)}`),
    insertMany: database.prepare(`INSERT INTO egress_events ${insertColumns} VALUES ${values(insertChunk)}`),
    findQueue: database.prepare<[string, string], { queue: number }>('SELECT queue FROM egress_queues WHERE destination = ? AND partition = ?'),
    createQueue: database.prepare<[string, string], { queue: number }>('INSERT INTO egress_queues (destination, partition) VALUES (?, ?) RETURNING queue'),
    queuesOf: database.prepare<[string], QueueRow>('SELECT queue, partition FROM egress_queues WHERE destination = ? ORDER BY queue'),
    allQueues: database.prepare<[], { queue: number; destination: string; partition: string }>('SELECT queue, destination, partition FROM egress_queues'),

    firstFormed: database.prepare<[number], { batch: number; id: string; ready_at: number }>('SELECT batch, id, ready_at FROM egress_batches WHERE queue = ? ORDER BY first_seq LIMIT 1'),
    readyFormed: database.prepare<[number, number], { batch: number; id: string }>('SELECT batch, id FROM egress_batches WHERE queue = ? AND ready_at <= ? ORDER BY ready_at LIMIT 1'),
    nextFormed: database.prepare<[number], { next: number | null }>('SELECT min(ready_at) AS next FROM egress_batches WHERE queue = ?'),
    leaseFormed: database.prepare('UPDATE egress_batches SET ready_at = ?, leased = 1, holder = ?, lease = ? WHERE batch = ?'),
    countAttempt: database.prepare<[number], EventRow>('UPDATE egress_events SET attempts = attempts + 1 WHERE batch = ? RETURNING seq, id, payload, size, sent_at, attempts, trace'),

    oldestWaiting: database.prepare<[number], { seq: number; sent_at: number }>('SELECT seq, sent_at FROM egress_events WHERE queue = ? AND batch IS NULL ORDER BY seq LIMIT 1'),
    waitingTotals: database.prepare<[number], { count: number; bytes: number }>('SELECT count(*) AS count, total(size) AS bytes FROM egress_events WHERE queue = ? AND batch IS NULL'),
    dataVersion: database.prepare<[], { data_version: number }>('PRAGMA data_version'),
    waitingEvents: database.prepare<[number, number], EventRow>('SELECT seq, id, payload, size, sent_at, attempts, trace FROM egress_events WHERE queue = ? AND batch IS NULL ORDER BY seq LIMIT ?'),
    createBatch: database.prepare('INSERT INTO egress_batches (id, queue, first_seq, ready_at, leased, holder, lease) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    assignBatch: database.prepare('UPDATE egress_events SET batch = ?, attempts = attempts + 1 WHERE queue = ? AND batch IS NULL AND seq BETWEEN ? AND ?'),
    /** The two statements that form `count` single-event batches at once (see `formSingleEventBatches`), prepared on first use. */
    singleEventForm(count: number): SingleEventForm {
      const known = singleEventForms.get(count);
      if (known) return known;
      const form: SingleEventForm = {
        create: database.prepare<[unknown[]], { batch: number; first_seq: number }>(
          `INSERT INTO egress_batches (id, queue, first_seq, ready_at, leased, holder, lease) VALUES ${Array.from({ length: count }, () => '(?, ?, ?, ?, 1, ?, ?)').join(', ')} RETURNING batch, first_seq`,
        ),
        // Each (seq, batch) pair puts one waiting event in its own batch.
        assign: database.prepare<[number[]]>(
          `UPDATE egress_events SET batch = pairs.column2, attempts = attempts + 1 FROM (VALUES ${Array.from({ length: count }, () => '(?, ?)').join(', ')}) AS pairs
           WHERE egress_events.seq = pairs.column1 AND egress_events.batch IS NULL`,
        ),
      };
      singleEventForms.set(count, form);
      return form;
    },

    batchById: database.prepare<[string], { batch: number; queue: number; leased: number; lease: string | null }>('SELECT batch, queue, leased, lease FROM egress_batches WHERE id = ?'),
    // Finds the batch, checks that the claim still holds it (see `holdsLease`) and removes it, in one statement.
    deleteHeldBatch: database.prepare<[string, string | null, string | null], { batch: number }>('DELETE FROM egress_batches WHERE id = ? AND (? IS NULL OR lease = ?) RETURNING batch'),
    deleteBatchEvents: database.prepare<[number], { size: number }>('DELETE FROM egress_events WHERE batch = ? RETURNING size'),
    deleteBatch: database.prepare('DELETE FROM egress_batches WHERE batch = ?'),
    deleteEventOfBatch: database.prepare<[string, number], { size: number }>('DELETE FROM egress_events WHERE id = ? AND batch = ? RETURNING size'),
    buryEvent: database.prepare(
      `INSERT OR REPLACE INTO egress_dead (id, destination, partition, payload, size, sent_at, attempts, trace, error_name, error_message, error_at, dead_at)
       SELECT e.id, q.destination, q.partition, e.payload, e.size, e.sent_at, e.attempts, e.trace, ?, ?, ?, ?
       FROM egress_events e JOIN egress_queues q ON q.queue = e.queue WHERE e.id = ? AND e.batch = ?`,
    ),
    moveToBatch: database.prepare<[number, string, number], { seq: number }>('UPDATE egress_events SET batch = ? WHERE id = ? AND batch = ? RETURNING seq'),
    setFirstSeq: database.prepare('UPDATE egress_batches SET first_seq = ? WHERE batch = ?'),
    scheduleRetry: database.prepare('UPDATE egress_batches SET ready_at = ?, leased = 0, holder = NULL, lease = NULL WHERE batch = ?'),
    returnLeftovers: database.prepare('UPDATE egress_events SET batch = NULL WHERE batch = ?'),
    uncountAttempt: database.prepare('UPDATE egress_events SET attempts = max(0, attempts - 1) WHERE batch = ?'),

    anyAtOrBelow: database.prepare<[number], { found: number }>('SELECT 1 AS found FROM egress_events WHERE seq <= ? LIMIT 1'),
    pendingById: database.prepare<[string], { found: number }>('SELECT 1 AS found FROM egress_events WHERE id = ?'),
    deadById: database.prepare<[string], { found: number }>('SELECT 1 AS found FROM egress_dead WHERE id = ?'),

    countWaiting: database.prepare<[], { events: number; bytes: number }>('SELECT count(*) AS events, total(size) AS bytes FROM egress_events WHERE batch IS NULL'),
    countBatched: database.prepare<[], { events: number; bytes: number }>('SELECT count(*) AS events, total(size) AS bytes FROM egress_events WHERE batch IS NOT NULL'),
    countDead: database.prepare<[], { events: number; bytes: number }>('SELECT count(*) AS events, total(size) AS bytes FROM egress_dead'),
    waitingStats: database.prepare<[], { queue: number; waiting: number; oldest: number | null }>(
      'SELECT queue, count(*) AS waiting, min(sent_at) AS oldest FROM egress_events WHERE batch IS NULL GROUP BY queue',
    ),
    batchedStats: database.prepare<[{ now: number }], { queue: number; in_flight: number; waiting: number; oldest: number | null }>(
      `SELECT b.queue AS queue,
              sum(CASE WHEN b.leased = 1 AND b.ready_at > @now THEN 1 ELSE 0 END) AS in_flight,
              sum(CASE WHEN b.leased = 1 AND b.ready_at > @now THEN 0 ELSE 1 END) AS waiting,
              min(e.sent_at) AS oldest
       FROM egress_batches b JOIN egress_events e ON e.batch = b.batch GROUP BY b.queue`,
    ),
    deadStats: database.prepare<[], { destination: string; partition: string; dead: number }>('SELECT destination, partition, count(*) AS dead FROM egress_dead GROUP BY destination, partition'),
    deleteDead: database.prepare<[string], { size: number }>('DELETE FROM egress_dead WHERE id = ? RETURNING size'),
    addToCounters: database.prepare<[string, string, number, number]>(
      `INSERT INTO egress_counters (destination, partition, delivered, failed) VALUES (?, ?, ?, ?)
       ON CONFLICT (destination, partition) DO UPDATE SET delivered = delivered + excluded.delivered, failed = failed + excluded.failed`,
    ),
    counterStats: database.prepare<[], { destination: string; partition: string; delivered: number; failed: number }>('SELECT destination, partition, delivered, failed FROM egress_counters'),
  };
}

class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly durable = true;
  private database: Database.Database | undefined;
  private statements: Statements | undefined;
  private partitionStateTable: PartitionStates | undefined;
  private group: TransactionGroup | undefined;
  private readonly token = randomUUID();
  /** Numbers the leases this instance hands out; with `token`, a lease token unique to one claim. */
  private leases = 0;
  /** Events and payload bytes held, dead letters included; reserved at `enqueue` before the commit. */
  private heldEvents = 0;
  private heldBytes = 0;
  /** The part of `held*` that `enqueue` calls reserved and have not committed yet; a recount keeps it. */
  private reservedEvents = 0;
  private reservedBytes = 0;
  private recountTimer: NodeJS.Timeout | undefined;
  private recountedAt = 0;
  /** (destination, partition) → queue number, filled as queues are seen; cleared after a rollback. */
  private readonly queueIds = new Map<string, number>();
  /**
   * Waiting events and bytes per queue, kept up to date by this instance's own writes, so that a
   * claim under `maxDelay` decides whether a full batch waits without counting the partition again.
   * Filled on demand; dropped after a rollback or when another connection wrote to the file.
   */
  private readonly waitingTotals = new Map<number, { count: number; bytes: number }>();
  private dataVersion: number | undefined;
  /** Last queue served per destination, so claims visit partitions round-robin. */
  private readonly lastServed = new Map<string, number>();
  private state: 'new' | 'open' | 'closing' | 'closed' = 'new';
  private logger: Logger | undefined;
  private file: QueueFileIdentity | undefined;
  /** Set while the removed queue file could not be recreated, so that the failure is logged once. */
  private recreateFailed = false;
  /** Settlements made in one turn, applied by one operation. */
  private readonly settlements = new TurnBatch<SettlementItem, Freed>(
    (take) => this.submit((statements) => this.settleAll(statements, take())),
    (item) => this.submit((statements) => this.settleAll(statements, [item])[0]!),
  );
  /** Enqueues made in one turn (one per unit of work committed), inserted by one operation. */
  private readonly enqueues = new TurnBatch<readonly QueuedEvent[], void>(
    (take) =>
      this.submit((statements) => {
        const calls = take();
        this.insert(statements, calls.length === 1 ? calls[0]! : calls.flat());
        return new Array<void>(calls.length);
      }),
    (events) => this.submit((statements) => this.insert(statements, events)),
  );

  constructor(
    private readonly path: string,
    private readonly maxEvents: number,
    private readonly maxBytes: number,
    private readonly synchronous: 'normal' | 'full',
    private readonly busyTimeout: number,
    /** The application's database the queue's tables live in, instead of a queue file of its own. */
    private readonly applicationDatabase?: Database.Database,
  ) {}

  async open(context?: StoreContext): Promise<void> {
    if (this.state !== 'new') throw new EgressConfigurationError('open() was already called on this store', `[sqlite] ${this.path}`);
    let database: Database.Database;
    try {
      if (this.applicationDatabase) prepareSharedSchema(this.applicationDatabase, `[sqlite] ${this.path}`);
      database = this.applicationDatabase ?? openDatabase(this.path, { synchronous: this.synchronous, busyTimeout: this.busyTimeout });
    } catch (error) {
      // A lock held by another process or a full disk passes: the engine opens the store again later.
      const typed = asStoreError(EgressConfigurationError.isInstance(error) ? error.cause : error, this.path);
      throw EgressStoreUnavailableError.isInstance(typed) ? typed : error;
    }
    let recovery: ReturnType<typeof recoverLeases>;
    try {
      recovery = database
        .transaction(() => {
          const found = recoverLeases(database);
          if (!found.othersAlive) tidyUp(database);
          registerHolder(database, this.token, Date.now());
          return found;
        })
        .immediate();
    } catch (error) {
      forgetHolder(this.token);
      if (!this.applicationDatabase) database.close();
      // A lock held by another process or a full disk passes: the engine opens the store again later.
      const typed = asStoreError(error, this.path);
      if (EgressStoreUnavailableError.isInstance(typed)) throw typed;
      throw new EgressConfigurationError(`cannot start using the queue file (${error instanceof Error ? error.message : String(error)})`, `[sqlite] ${this.path}`, {
        cause: error,
      });
    }
    this.database = database;
    this.statements = prepareStatements(database);
    this.partitionStateTable = new PartitionStates(database);
    // The application's file is the application's to look after.
    if (!this.applicationDatabase) this.file = new QueueFileIdentity(this.path);
    this.group = new TransactionGroup(
      database,
      () => {
        this.queueIds.clear();
        this.waitingTotals.clear();
      },
      { describe: (error) => asStoreError(error, this.path), removed: () => this.file?.gone() ?? false, recreate: () => this.recreateFile() },
    );
    this.recount();
    this.state = 'open';
    const logger = context?.logger;
    this.logger = logger;
    if (recovery.recovered > 0) {
      logger?.info({ store: 'sqlite', path: this.path, batches: recovery.recovered }, 'gave back the batches leased by a process that is gone; they are delivered again under the same ids');
    }
    if (recovery.othersAlive) {
      logger?.warn(
        { store: 'sqlite', path: this.path },
        'another process has this queue file open; its leases are left to expire. The SQLite store is meant for one process at a time: use @egress/store-postgres for several',
      );
    }
  }

  /**
   * The queue file was removed while open: copies what the connection still reads into a new file at
   * the same path and continues there (see `recreateRemovedFile`); undefined when that failed.
   */
  private recreateFile(): Database.Database | { error: unknown } {
    const removed = this.database!;
    let database: Database.Database;
    try {
      database = recreateRemovedFile(removed, this.path, { synchronous: this.synchronous, busyTimeout: this.busyTimeout });
    } catch (error) {
      if (!this.recreateFailed) {
        this.logger?.error(
          { store: 'sqlite', path: this.path, error },
          'the queue file was removed while in use and could not be recreated; nothing is written until it can be, and what the removed file holds stays readable only to this process',
        );
      }
      this.recreateFailed = true;
      return { error: new QueueFileRemovedError(error instanceof Error ? error.message : String(error)) };
    }
    this.recreateFailed = false;
    this.database = database;
    this.statements = prepareStatements(database);
    this.partitionStateTable = new PartitionStates(database);
    this.file!.remember();
    this.dataVersion = undefined;
    removed.close();
    this.logger?.warn({ store: 'sqlite', path: this.path }, 'the queue file was removed while in use; everything it held was copied into a new file at the same path');
    return database;
  }

  private recount(): void {
    const statements = this.statements!;
    // Each count reads one index, never the rows with their payloads.
    const waiting = statements.countWaiting.get()!;
    const batched = statements.countBatched.get()!;
    const dead = statements.countDead.get()!;
    this.heldEvents = waiting.events + batched.events + dead.events + this.reservedEvents;
    this.heldBytes = waiting.bytes + batched.bytes + dead.bytes + this.reservedBytes;
    this.recountedAt = Date.now();
  }

  private submit<T>(work: (statements: Statements) => T): Promise<T> {
    if (this.state !== 'open' || !this.group || !this.statements) {
      return Promise.reject(new EgressConfigurationError(this.state === 'new' ? 'the store is not open: call open() first' : 'the store is closed', `[sqlite] ${this.path}`));
    }
    // Read when the work runs, not now: the file may have been recreated in between (`recreateFile`).
    return this.group.submit(() => work(this.statements!));
  }

  admit(events: number, bytes: number): boolean {
    return this.heldEvents + events <= this.maxEvents && this.heldBytes + bytes <= this.maxBytes;
  }

  async enqueue(events: readonly QueuedEvent[]): Promise<void> {
    if (events.length === 0) return;
    let bytes = 0;
    for (const event of events) bytes += event.size;
    if (this.state === 'open' && !this.admit(events.length, bytes)) {
      throw new EgressCapacityError(`sqlite store is full (${this.heldEvents} of ${this.maxEvents} events, ${this.heldBytes} of ${this.maxBytes} bytes)`);
    }
    // Reserved now, so that sends accepted before this commit lands cannot overshoot the capacity.
    this.heldEvents += events.length;
    this.heldBytes += bytes;
    this.reservedEvents += events.length;
    this.reservedBytes += bytes;
    try {
      await this.enqueues.submit(events);
    } catch (error) {
      this.heldEvents -= events.length;
      this.heldBytes -= bytes;
      throw error;
    } finally {
      this.reservedEvents -= events.length;
      this.reservedBytes -= bytes;
    }
  }

  /**
   * Inserts the events synchronously inside the application's open transaction on its database.
   * They are not counted against capacity here, since the transaction may roll back: the count is
   * taken again from the tables once the transaction has ended (at most once a second).
   */
  enqueueWithin(transaction: unknown, events: readonly QueuedEvent[], ended: () => void): void {
    const where = `[sqlite] ${this.path}`;
    assertOpenTransaction(transaction, this.applicationDatabase, where);
    if (this.state !== 'open' || !this.statements) throw new EgressConfigurationError('the store is not open: await egress.ready() first', where);
    if (events.length === 0) return;
    let bytes = 0;
    for (const event of events) bytes += event.size;
    if (!this.admit(events.length, bytes)) {
      throw new EgressCapacityError(`sqlite store is full (${this.heldEvents} of ${this.maxEvents} events, ${this.heldBytes} of ${this.maxBytes} bytes)`);
    }
    this.insert(this.statements, events);
    // A rollback takes the rows away but not what this instance remembers about them.
    this.queueIds.clear();
    this.waitingTotals.clear();
    whenTransactionEnds(transaction, () => {
      this.recountSoon();
      ended();
    });
  }

  private recountSoon(): void {
    if (this.recountTimer || this.state !== 'open') return;
    this.recountTimer = setTimeout(() => {
      this.recountTimer = undefined;
      if (this.state === 'open') this.recount();
    }, Math.max(0, this.recountedAt + 1000 - Date.now()));
    this.recountTimer.unref();
  }

  private insert(statements: Statements, events: readonly QueuedEvent[]): void {
    const last = statements.advanceSeq.get(events.length)!.value;
    let seq = last - events.length;
    const tracked = this.waitingTotals.size > 0;
    const parameters: unknown[] = new Array(insertChunk * 8);
    let slot = 0;
    // Events of one enqueue mostly share a destination and partition: look the queue up once per run of them.
    let destination: string | undefined;
    let partition: string | undefined;
    let queue = 0;
    for (let index = 0; index < events.length; index += 1) {
      const event = events[index]!;
      if (event.destination !== destination || event.partition !== partition) {
        destination = event.destination;
        partition = event.partition;
        queue = this.queueOf(statements, destination, partition);
      }
      if (tracked) {
        const totals = this.waitingTotals.get(queue);
        if (totals) {
          totals.count += 1;
          totals.bytes += event.size;
        }
      }
      // Whole chunks of rows go in one statement each; the tail goes row by row.
      if (slot === 0 && events.length - index < insertChunk) {
        statements.insertOne.run(++seq, event.id, queue, event.payload, event.size, event.sentAt, event.attempts, event.trace ?? null);
        continue;
      }
      parameters[slot++] = ++seq;
      parameters[slot++] = event.id;
      parameters[slot++] = queue;
      parameters[slot++] = event.payload;
      parameters[slot++] = event.size;
      parameters[slot++] = event.sentAt;
      parameters[slot++] = event.attempts;
      parameters[slot++] = event.trace ?? null;
      if (slot === parameters.length) {
        statements.insertMany.run(parameters);
        slot = 0;
      }
    }
  }

  private queueOf(statements: Statements, destination: string, partition: string): number {
    const key = `${destination}\u0000${partition}`;
    let queue = this.queueIds.get(key);
    if (queue === undefined) {
      queue = (statements.findQueue.get(destination, partition) ?? statements.createQueue.get(destination, partition)!).queue;
      this.queueIds.set(key, queue);
    }
    return queue;
  }

  async claim(request: ClaimRequest): Promise<ClaimResult> {
    const result = await this.submit((statements) => this.claimNow(statements, request));
    if (result.lastServed !== undefined) this.lastServed.set(request.destination, result.lastServed);
    return { batches: result.batches, nextReadyAt: result.nextReadyAt };
  }

  private claimNow(statements: Statements, request: ClaimRequest): ClaimResult & { lastServed: number | undefined } {
    const batches: ClaimedBatch[] = [];
    let nextReadyAt: number | undefined;
    let lastServed: number | undefined;
    const later = (time: number) => {
      nextReadyAt = nextReadyAt === undefined ? time : Math.min(nextReadyAt, time);
    };
    const version = statements.dataVersion.get()!.data_version;
    if (version !== this.dataVersion) {
      this.dataVersion = version;
      this.waitingTotals.clear();
    }
    // Start after the partition served last, so that every partition gets its turn.
    const states = this.partitionStateTable!.byPartition(request.destination);
    const queues = statements.queuesOf.all(request.destination).filter((queue) => claimable(states.get(queue.partition), request, queue.partition));
    const after = this.lastServed.get(request.destination);
    const start = after === undefined ? 0 : queues.findIndex((queue) => queue.queue > after);
    const ordered = start <= 0 ? queues : [...queues.slice(start), ...queues.slice(0, start)];

    for (const queue of ordered) {
      if (batches.length >= request.maxBatches) break;
      let formedLeft = true;
      while (batches.length < request.maxBatches) {
        if (formedLeft) {
          const formed = this.claimFormed(statements, queue, request, later);
          if (formed === 'blocked') break;
          if (formed) {
            batches.push(formed);
            lastServed = queue.queue;
            if (request.fifo) break;
            continue;
          }
          // Claiming only leases batches, so none becomes ready again during this claim.
          formedLeft = false;
        }
        const fresh = this.claimWaiting(statements, queue, request, later, request.fifo ? 1 : request.maxBatches - batches.length);
        if (fresh.length === 0) break;
        batches.push(...fresh);
        lastServed = queue.queue;
        if (request.fifo) break;
      }
    }
    return { batches, nextReadyAt, lastServed };
  }

  /** A batch formed earlier (a retry, a released batch or an expired lease), or 'blocked' when FIFO order must wait. */
  private claimFormed(statements: Statements, queue: QueueRow, request: ClaimRequest, later: (time: number) => void): ClaimedBatch | 'blocked' | undefined {
    if (request.fifo) {
      const first = statements.firstFormed.get(queue.queue);
      if (!first) return undefined;
      if (first.ready_at <= request.now) return this.leaseFormed(statements, queue, first, request);
      later(first.ready_at);
      return 'blocked';
    }
    const ready = statements.readyFormed.get(queue.queue, request.now);
    if (ready) return this.leaseFormed(statements, queue, ready, request);
    const next = statements.nextFormed.get(queue.queue)?.next;
    if (next !== null && next !== undefined) later(next);
    return undefined;
  }

  private leaseFormed(statements: Statements, queue: QueueRow, formed: { batch: number; id: string }, request: ClaimRequest): ClaimedBatch {
    const lease = this.nextLease();
    statements.leaseFormed.run(request.now + request.leaseMs, this.token, lease, formed.batch);
    const rows = statements.countAttempt.all(formed.batch).sort((a, b) => a.seq - b.seq);
    return { id: formed.id, destination: request.destination, partition: queue.partition, events: rows.map((row) => toEvent(row, request.destination, queue.partition)), lease };
  }

  private nextLease(): string {
    this.leases += 1;
    return `${this.token}:${this.leases}`;
  }

  /** Up to `wanted` new batches from the partition's waiting events, oldest first. */
  private claimWaiting(statements: Statements, queue: QueueRow, request: ClaimRequest, later: (time: number) => void, wanted: number): ClaimedBatch[] {
    if (!request.force && request.maxDelay > 0) {
      const oldest = statements.oldestWaiting.get(queue.queue);
      if (!oldest) return [];
      if (request.now - oldest.sent_at < request.maxDelay && !this.fullBatchWaits(statements, queue, request)) {
        later(oldest.sent_at + request.maxDelay);
        return [];
      }
      // What is left after this batch must be ready on its own: decided on the next turn.
      wanted = 1;
    }
    // Small batches: the rows of several in one read. Large ones row by row, so that a batch cut
    // short by maxBytes reads no more payloads than it takes.
    const limit = request.maxEvents <= 1000 ? Math.min(wanted * request.maxEvents, 1000) : request.maxEvents;
    if (request.maxEvents === 1) return this.formSingleEventBatches(statements, queue, request, statements.waitingEvents.all(queue.queue, limit));
    const candidates = limit <= 1000 ? statements.waitingEvents.all(queue.queue, limit) : statements.waitingEvents.iterate(queue.queue, limit);
    const formed: ClaimedBatch[] = [];
    let rows: EventRow[] = [];
    let bytes = 0;
    let read = 0;
    for (const row of candidates) {
      if (rows.length > 0 && (rows.length >= request.maxEvents || bytes + row.size > request.maxBytes)) {
        formed.push(this.formBatch(statements, queue, request, rows, bytes));
        rows = [];
        bytes = 0;
        if (formed.length >= wanted) break;
      }
      read += 1;
      rows.push(row);
      bytes += row.size;
    }
    // A last, unfinished batch waits when more rows may lie past what was read (it will grow).
    const more = read === limit;
    if (rows.length > 0 && formed.length < wanted && !(more && rows.length < request.maxEvents)) formed.push(this.formBatch(statements, queue, request, rows, bytes));
    return formed;
  }

  private formBatch(statements: Statements, queue: QueueRow, request: ClaimRequest, rows: readonly EventRow[], bytes: number): ClaimedBatch {
    const id = createBatchId(
      request.destination,
      rows.map((row) => row.id),
    );
    const first = rows[0]!.seq;
    const last = rows[rows.length - 1]!.seq;
    const lease = this.nextLease();
    const batch = Number(statements.createBatch.run(id, queue.queue, first, request.now + request.leaseMs, 1, this.token, lease).lastInsertRowid);
    statements.assignBatch.run(batch, queue.queue, first, last);
    const totals = this.waitingTotals.get(queue.queue);
    if (totals) {
      totals.count -= rows.length;
      totals.bytes -= bytes;
    }
    const events: QueuedEvent[] = new Array(rows.length);
    for (let index = 0; index < rows.length; index += 1) events[index] = claimedEvent(rows[index]!, request.destination, queue.partition);
    return { id, destination: request.destination, partition: queue.partition, events, lease };
  }

  /**
   * One batch per row (`maxEvents: 1`, one webhook per event): up to `batchChunk` of them are
   * created by two statements, one that inserts the batches and one that moves their events in,
   * rather than two statements per batch.
   */
  private formSingleEventBatches(statements: Statements, queue: QueueRow, request: ClaimRequest, rows: readonly EventRow[]): ClaimedBatch[] {
    const formed: ClaimedBatch[] = new Array(rows.length);
    const leaseUntil = request.now + request.leaseMs;
    const totals = this.waitingTotals.get(queue.queue);
    for (let index = 0; index < rows.length; ) {
      const count = Math.min(batchChunk, rows.length - index);
      if (count === 1) {
        formed[index] = this.formBatch(statements, queue, request, [rows[index]!], rows[index]!.size);
        break;
      }
      const batchParameters: unknown[] = new Array(count * 6);
      for (let offset = 0; offset < count; offset += 1) {
        const row = rows[index + offset]!;
        const id = createBatchId(request.destination, [row.id]);
        const lease = this.nextLease();
        const at = offset * 6;
        batchParameters[at] = id;
        batchParameters[at + 1] = queue.queue;
        batchParameters[at + 2] = row.seq;
        batchParameters[at + 3] = leaseUntil;
        batchParameters[at + 4] = this.token;
        batchParameters[at + 5] = lease;
        formed[index + offset] = { id, destination: request.destination, partition: queue.partition, events: [claimedEvent(row, request.destination, queue.partition)], lease };
        if (totals) {
          totals.count -= 1;
          totals.bytes -= row.size;
        }
      }
      const form = statements.singleEventForm(count);
      const created = form.create.all(batchParameters);
      const assignParameters: number[] = new Array(count * 2);
      for (let slot = 0; slot < created.length; slot += 1) {
        assignParameters[slot * 2] = created[slot]!.first_seq;
        assignParameters[slot * 2 + 1] = created[slot]!.batch;
      }
      form.assign.run(assignParameters);
      index += count;
    }
    return formed;
  }

  /** Whether maxEvents events or maxBytes bytes wait in the partition. */
  private fullBatchWaits(statements: Statements, queue: QueueRow, request: ClaimRequest): boolean {
    let totals = this.waitingTotals.get(queue.queue);
    if (!totals) {
      // Counted once on the index alone; afterwards kept up to date by enqueue and claim.
      const counted = statements.waitingTotals.get(queue.queue)!;
      totals = { count: counted.count, bytes: counted.bytes };
      this.waitingTotals.set(queue.queue, totals);
    }
    return totals.count >= request.maxEvents || totals.bytes >= request.maxBytes;
  }

  async settle(claimed: ClaimedBatch, settlement: Settlement): Promise<void> {
    const freed = await this.settlements.submit({ claimed, settlement });
    this.heldEvents -= freed.events;
    this.heldBytes -= freed.bytes;
  }

  /** Applies settlements in order, and adds to each partition's totals once for all of them. */
  private settleAll(statements: Statements, items: readonly SettlementItem[]): Freed[] {
    const totals = new Map<string, { destination: string; partition: string; delivered: number; failed: number }>();
    const freed = items.map(({ claimed, settlement }) => {
      const outcome = this.applyIfHeld(statements, claimed, settlement);
      if (!outcome) return { events: 0, bytes: 0 };
      if (outcome.delivered + outcome.failed > 0) {
        const key = `${claimed.destination}\n${claimed.partition}`;
        const total = totals.get(key) ?? { destination: claimed.destination, partition: claimed.partition, delivered: 0, failed: 0 };
        total.delivered += outcome.delivered;
        total.failed += outcome.failed;
        totals.set(key, total);
      }
      return outcome.freed;
    });
    for (const total of totals.values()) statements.addToCounters.run(total.destination, total.partition, total.delivered, total.failed);
    return freed;
  }

  /**
   * Applies a settlement if the claim still holds its batch; returns what it freed and how many
   * events it recorded as delivered and failed, or undefined when the batch is no longer the claim's.
   */
  private applyIfHeld(statements: Statements, claimed: ClaimedBatch, settlement: Settlement): { freed: Freed; delivered: number; failed: number } | undefined {
    if (!settlement.retry && settlement.dead.length === 0 && settlement.delivered.length === claimed.events.length) {
      // Delivered whole, the common case: two statements, the batch's and its events'.
      const lease = claimed.lease ?? null;
      const held = statements.deleteHeldBatch.get(claimed.id, lease, lease);
      if (!held) return undefined;
      let events = 0;
      let bytes = 0;
      for (const row of statements.deleteBatchEvents.all(held.batch)) {
        events += 1;
        bytes += row.size;
      }
      return { freed: { events, bytes }, delivered: events, failed: 0 };
    }
    const found = statements.batchById.get(claimed.id);
    if (!found || !holdsLease(found, claimed)) return undefined;
    return this.applySettlement(statements, found, claimed, settlement);
  }

  /** Applies a settlement that retries or dead-letters events to a batch the claim holds. */
  private applySettlement(
    statements: Statements,
    found: { batch: number; queue: number },
    claimed: ClaimedBatch,
    settlement: Settlement,
  ): { freed: { events: number; bytes: number }; delivered: number; failed: number } {
    const freed = { events: 0, bytes: 0 };
    let failed = 0;
    const free = (rows: { size: number }[]) => {
      for (const row of rows) {
        freed.events += 1;
        freed.bytes += row.size;
      }
    };
    for (const id of settlement.delivered) free(statements.deleteEventOfBatch.all(id, found.batch));
    for (const { eventId, error } of settlement.dead) {
      // Dead letters still count against the capacity, so nothing is freed here.
      if (statements.buryEvent.run(error.name, error.message, error.at, error.at, eventId, found.batch).changes > 0) {
        statements.deleteEventOfBatch.run(eventId, found.batch);
        failed += 1;
      }
    }
    let kept = false;
    const retry = settlement.retry;
    if (retry && retry.eventIds.length > 0) {
      if (retry.batchId === claimed.id) {
        statements.scheduleRetry.run(retry.availableAt, found.batch);
        kept = true;
        failed += retry.eventIds.length;
      } else {
        const batch = Number(statements.createBatch.run(retry.batchId, found.queue, 0, retry.availableAt, 0, null, null).lastInsertRowid);
        let first: number | undefined;
        for (const id of retry.eventIds) {
          const moved = statements.moveToBatch.get(batch, id, found.batch);
          if (!moved) continue;
          failed += 1;
          if (first === undefined || moved.seq < first) first = moved.seq;
        }
        if (first === undefined) statements.deleteBatch.run(batch);
        else statements.setFirstSeq.run(first, batch);
      }
    }
    if (!kept) {
      // Events the settlement did not mention are not dropped: they wait again in arrival order.
      if (statements.returnLeftovers.run(found.batch).changes > 0) this.waitingTotals.delete(found.queue);
      statements.deleteBatch.run(found.batch);
    }
    return { freed, delivered: freed.events, failed };
  }

  async release(claimed: ClaimedBatch): Promise<void> {
    await this.submit((statements) => {
      const found = statements.batchById.get(claimed.id);
      if (!found || found.leased !== 1 || !holdsLease(found, claimed)) return;
      statements.scheduleRetry.run(0, found.batch);
      statements.uncountAttempt.run(found.batch);
    });
  }

  async partitionStates(query: { destination?: string }): Promise<PartitionState[]> {
    return this.submit(() => this.partitionStateTable!.list(query.destination));
  }

  async setPartitionState(change: PartitionStateChange): Promise<boolean> {
    return this.submit(() => this.partitionStateTable!.change(change));
  }

  async watermark(): Promise<number> {
    return this.submit((statements) => statements.lastSeq.get()!.value);
  }

  async pendingAtOrBelow(mark: number): Promise<boolean> {
    return this.submit((statements) => statements.anyAtOrBelow.get(mark) !== undefined);
  }

  async eventState(eventId: string): Promise<'pending' | 'dead' | 'gone'> {
    return this.submit((statements) => {
      if (statements.pendingById.get(eventId)) return 'pending';
      return statements.deadById.get(eventId) ? 'dead' : 'gone';
    });
  }

  async listDead(query: DeadLetterQuery): Promise<StoredDeadLetter[]> {
    return this.submit(() => {
      const { clauses, parameters } = deadFilter(query.ids, query.destination);
      if (query.after !== undefined) {
        clauses.push('id > ?');
        parameters.push(query.after);
      }
      const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
      const rows = this.database!.prepare(`SELECT * FROM egress_dead ${where} ORDER BY id LIMIT ?`).all(...parameters, query.limit ?? 100) as DeadRow[];
      return rows.map(toDeadLetter);
    });
  }

  async retryDead(ids: readonly string[] | undefined, query: { destination?: string; now: number }): Promise<number> {
    return this.submit((statements) => {
      const letters = this.selectDead(ids, query.destination);
      if (letters.length === 0) return 0;
      for (const letter of letters) statements.deleteDead.run(letter.id);
      this.insert(
        statements,
        letters.map((letter) => ({ ...toDeadLetter(letter).event, attempts: 0, sentAt: query.now })),
      );
      return letters.length;
    });
  }

  async purgeDead(ids: readonly string[] | undefined, query: { destination?: string }): Promise<number> {
    const freed = await this.submit((statements) => {
      const letters = this.selectDead(ids, query.destination);
      let bytes = 0;
      for (const letter of letters) {
        statements.deleteDead.run(letter.id);
        bytes += letter.size;
      }
      return { events: letters.length, bytes };
    });
    this.heldEvents -= freed.events;
    this.heldBytes -= freed.bytes;
    return freed.events;
  }

  /** Dead letters by id (in the order given) or all of them (in the order they died). */
  private selectDead(ids: readonly string[] | undefined, destination: string | undefined): DeadRow[] {
    const { clauses, parameters } = deadFilter(ids, destination);
    const where = clauses.length > 0 ? `WHERE ${clauses.join(' AND ')}` : '';
    const rows = this.database!.prepare(`SELECT * FROM egress_dead ${where} ORDER BY rowid`).all(...parameters) as DeadRow[];
    if (!ids) return rows;
    const byId = new Map(rows.map((row) => [row.id, row]));
    return [...new Set(ids)].map((id) => byId.get(id)).filter((row): row is DeadRow => row !== undefined);
  }

  async stats(now: number): Promise<StoreStats[]> {
    return this.submit((statements) => {
      const names = new Map(statements.allQueues.all().map((row) => [row.queue, row]));
      const table = new StoreStatsTable();
      for (const waiting of statements.waitingStats.all()) {
        const name = names.get(waiting.queue);
        if (name) table.add(name.destination, name.partition, { waiting: waiting.waiting, oldestSentAt: waiting.oldest });
      }
      for (const batched of statements.batchedStats.all({ now })) {
        const name = names.get(batched.queue);
        if (name) table.add(name.destination, name.partition, { waiting: batched.waiting, inFlight: batched.in_flight, oldestSentAt: batched.oldest });
      }
      for (const dead of statements.deadStats.all()) table.add(dead.destination, dead.partition, { dead: dead.dead });
      for (const counters of statements.counterStats.all()) table.add(counters.destination, counters.partition, { delivered: counters.delivered, failed: counters.failed });
      return table.rowsWithEvents();
    });
  }

  async close(): Promise<void> {
    if (this.state !== 'open') {
      if (this.state === 'new') this.state = 'closed';
      return;
    }
    this.state = 'closing';
    const database = this.database!;
    await this.group!.close();
    try {
      // Leases still held (a delivery that outlived the shutdown) are given back at the next open.
      unregisterHolder(database, this.token);
    } finally {
      clearTimeout(this.recountTimer);
      if (!this.applicationDatabase) database.close();
      this.state = 'closed';
    }
  }
}

/**
 * Whether the caller still holds the batch. Once its lease ran out and another claim took the batch
 * (or the batch was settled or given back since), a late settlement or release from the earlier
 * claim is ignored, so the batch is not rescheduled or freed under the worker delivering it now.
 */
function holdsLease(found: { lease: string | null }, claimed: ClaimedBatch): boolean {
  return claimed.lease === undefined || found.lease === claimed.lease;
}

function deadFilter(ids: readonly string[] | undefined, destination: string | undefined): { clauses: string[]; parameters: unknown[] } {
  const clauses: string[] = [];
  const parameters: unknown[] = [];
  if (destination) {
    clauses.push('destination = ?');
    parameters.push(destination);
  }
  if (ids) {
    clauses.push('id IN (SELECT value FROM json_each(?))');
    parameters.push(JSON.stringify(ids));
  }
  return { clauses, parameters };
}

/** An event as a claim hands it out: its attempt, counted by the claim, included. */
function claimedEvent(row: EventRow, destination: string, partition: string): QueuedEvent {
  return queuedEvent(row.id, destination, partition, row.payload, row.size, row.sent_at, row.attempts + 1, row.trace);
}

function toEvent(row: EventRow, destination: string, partition: string): QueuedEvent {
  return queuedEvent(row.id, destination, partition, row.payload, row.size, row.sent_at, row.attempts, row.trace);
}

/**
 * An event with its trace context when it was sent with one. Each shape is written out whole: an
 * untraced event keeps the shape it always had, and a traced one is not copied from it by spread,
 * which for every claimed event cost more than the rest of this function.
 */
function queuedEvent(id: string, destination: string, partition: string, payload: string, size: number, sentAt: number, attempts: number, trace: string | null): QueuedEvent {
  return trace === null ? { id, destination, partition, payload, size, sentAt, attempts } : { id, destination, partition, payload, size, sentAt, attempts, trace };
}

function toDeadLetter(row: DeadRow): StoredDeadLetter {
  return {
    event: queuedEvent(row.id, row.destination, row.partition, row.payload, row.size, row.sent_at, row.attempts, row.trace),
    error: { name: row.error_name, message: row.error_message, at: row.error_at },
    deadAt: row.dead_at,
  };
}
