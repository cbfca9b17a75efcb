import { randomInt, randomUUID } from 'node:crypto';
import {
  EgressCapacityError,
  EgressConfigurationError,
  EgressStoreUnavailableError,
  parseDuration,
  parseSize,
  type ClaimRequest,
  type ClaimResult,
  type ClaimedBatch,
  type DeadLetterQuery,
  type Duration,
  type QueuedEvent,
  type Settlement,
  type Size,
  type Store,
  type StoreContext,
  type StoreStats,
  type StoreStatus,
  type StoredDeadLetter,
  type PartitionState,
  type PartitionStateChange,
} from '@egress/core';
import type { Pool, PoolClient, QueryConfig } from 'pg';
import { claimBatches, toQueuedEvent } from './batch-claim.js';
import { deliversWholeBatch, settleBatch, settleDelivered, type Queryable, type Removed, type SettlementRequest } from './batch-settlement.js';
import { describeError } from './connection-failure.js';
import { ConnectionStatus } from './connection-status.js';
import { DatabaseConnection } from './database-connection.js';
import { GroupCommit } from './group-commit.js';
import { LocalSpool } from './local-spool.js';
import { OutageRecovery } from './outage-recovery.js';
import { prepared } from './prepared-statement.js';
import { UncertainWrites } from './uncertain-writes.js';
import { migrate } from './schema-migrations.js';
import { readPartitionStates, writePartitionState } from './partition-states.js';
import { maxScopeLength, schemaNamePattern, schemaNames, tablePrefixPattern, type SchemaNames } from './schema-names.js';
import { SettlementGroup } from './settlement-group.js';
import { asPostgresTransaction, insertWithinTransaction } from './transactional-enqueue.js';
import { claimSingleEventBatches, claimsSingleEvents } from './single-event-claim.js';
import { WorkNotifications } from './work-notifications.js';

export interface PostgresStoreOptions {
  /** PostgreSQL URL, e.g. `postgres://egress:secret@db:5432/app`; the store opens and ends its own pool. */
  connectionString?: string;
  /** A node-postgres pool to use instead of `connectionString`; the store does not end it. */
  pool?: Pool;
  /** Schema that holds the queue, created and migrated by the store (default `egress`). */
  schema?: string;
  /**
   * Put before the name of each of the store's tables, sequences and indexes, e.g. `'egress_'`, so
   * that the queue can live in a schema the application already uses (`schema: 'public'`). Without
   * it the schema must be the store's alone.
   */
  tablePrefix?: string;
  /** Events held at most by all processes together, dead letters included (default 10,000,000). */
  maxEvents?: number;
  /** Payload bytes held at most by all processes together, dead letters included (default 10 GiB). */
  maxBytes?: Size;
  /** How long a claim holds before another worker may take the batch over; replaces the engine's lease (default: the engine's). Keep it above the delivery timeout. */
  leaseMs?: Duration;
  /** How often idle workers look for work if no notification arrives (default 5 s). */
  pollInterval?: Duration;
  /**
   * A local SQLite file, e.g. `'.egress/spool.db'`, that takes the events `enqueue` accepts while
   * PostgreSQL cannot be reached; they are moved into PostgreSQL, in order, once it answers. Events in
   * it survive the process being killed. Needs the `better-sqlite3` package. Without a spool, such
   * events wait in the engine's commit buffer, in memory.
   */
  spool?: string | { path: string };
  /** Longest wait for a connection before the attempt counts as PostgreSQL being unreachable (default 10 s). */
  connectTimeout?: Duration;
  /** Longest one statement or transaction may take before its connection is given up as broken (default 30 s). */
  queryTimeout?: Duration;
  /**
   * Connections opened when the store opens and kept open while idle, besides the one a worker holds
   * for LISTEN (default 3: one each for claims, settlements and writes). Each has run the store's
   * statements once, so the first deliveries after a start do not wait for connecting and planning.
   * 0 opens none ahead and keeps none idle. With `pool`, that many of its connections are opened
   * and warmed; how long they stay is the pool's affair.
   */
  idleConnections?: number;
  /** How long a connection beyond `idleConnections` may sit idle before it is closed (default 10 s). */
  idleTimeout?: Duration;
}

/** Connections opened and warmed at open, and kept while idle, unless `idleConnections` says otherwise. */
const defaultIdleConnections = 3;
/** node-postgres's default pool size, which the store's own pool keeps. */
const poolSize = 10;
/** Longest the warm-up may add to `open`; a database this slow is not helped by it anyway. */
const warmUpLimit = 2000;
/** Rows behind the capacity count are counted again at most this often... */
const capacityRefreshMin = 1000;
/** ...and at least this many times the last count took, so a large backlog is not scanned constantly. */
const capacityRefreshFactor = 50;
/** How often a store deletes the round-robin rows of partitions that have nothing queued. */
const partitionPruneInterval = 10 * 60_000;
/** Rows each partition's counters are spread over; workers that picked different ones never wait for each other's. */
const counterSlots = 16;
/** How long the row of a producer that stopped writing is kept. */
const producerRetention = 7 * 24 * 60 * 60_000;
/**
 * One write in flight at a time keeps events in the order `enqueue` was called (a later call never
 * commits first); calls that arrive meanwhile share the next write, which is where the speed comes from.
 */
const writeConcurrency = 1;
/**
 * One settlement write in flight at a time: the settlements that arrive meanwhile share the next
 * one, and two writes of one process never wait for each other's lock on a partition's counters row.
 */
const settleConcurrency = 1;
/**
 * How long a settlement may wait for others to share its write, when no delivery waits on it. At a
 * steady rate deliveries end one at a time, and without the wait each would cost a transaction.
 */
const settleHoldMs = 5;
/**
 * How deep a worker's lanes run, in multiples of their concurrency (the store's `claimAhead`): a
 * claim leases the free slots plus three times the concurrency ahead, and three times the
 * concurrency of settlements may trail the deliveries. A claim and a settlement write each take a
 * round trip and more under load; with one concurrency's worth ahead, the batches held ran out
 * before the next claim came back, and the settlements waiting for the one write in flight took
 * delivery slots, so the receiver sat idle. Deeper, each claim and each write also carries more
 * batches: fewer transactions per event.
 */
const pipelineDepth = 3;
/**
 * A destination's settlements wait for company only while fewer than this share of its widest claim
 * (delivery slots plus batches held ahead: four times its concurrency) are waiting. The engine lets
 * up to three times the concurrency of settlements trail the deliveries before it stops starting new
 * ones, so a held settlement never stops a delivery.
 */
const heldShareOfClaim = 1 / 4;

/**
 * A queue in PostgreSQL shared by producer and worker processes on any number of machines. Workers
 * lease many batches per claim with `FOR UPDATE SKIP LOCKED` (FIFO partitions under a lock of their
 * own) and settle many per transaction; a worker that dies loses its leases when they expire and
 * another worker delivers the same batch, with the same id.
 */
export function postgresStore(options: PostgresStoreOptions): Store {
  return new PostgresStore(resolveOptions(options));
}

interface ResolvedOptions {
  connectionString: string | undefined;
  pool: Pool | undefined;
  schema: string;
  tablePrefix: string;
  maxEvents: number;
  maxBytes: number;
  leaseMs: number | undefined;
  pollInterval: number;
  spoolPath: string | undefined;
  connectTimeout: number;
  queryTimeout: number;
  idleConnections: number;
  idleTimeout: number;
}

function resolveOptions(options: PostgresStoreOptions): ResolvedOptions {
  const where = (name: string) => `[postgres] option "${name}"`;
  if (typeof options !== 'object' || options === null) throw new EgressConfigurationError('expected an options object', '[postgres] options');
  if (options.connectionString === undefined && options.pool === undefined) {
    throw new EgressConfigurationError('Missing required option: give "connectionString" or "pool"', where('connectionString'));
  }
  if (options.connectionString !== undefined && options.pool !== undefined) {
    throw new EgressConfigurationError('give either "connectionString" or "pool", not both', where('pool'));
  }
  if (options.connectionString !== undefined && (typeof options.connectionString !== 'string' || options.connectionString.length === 0)) {
    throw new EgressConfigurationError('expected a PostgreSQL URL', where('connectionString'));
  }
  const schema = options.schema ?? 'egress';
  if (typeof schema !== 'string' || !schemaNamePattern.test(schema)) {
    throw new EgressConfigurationError(`expected letters, digits and underscores (at most 50, not starting with a digit), got ${JSON.stringify(schema)}`, where('schema'));
  }
  const tablePrefix = options.tablePrefix ?? '';
  if (typeof tablePrefix !== 'string' || (tablePrefix !== '' && !tablePrefixPattern.test(tablePrefix))) {
    throw new EgressConfigurationError(`expected letters, digits and underscores (at most 20, not starting with a digit), got ${JSON.stringify(tablePrefix)}`, where('tablePrefix'));
  }
  if (tablePrefix !== '' && schema.length + 1 + tablePrefix.length > maxScopeLength) {
    throw new EgressConfigurationError(`the schema and the table prefix together may have at most ${maxScopeLength - 1} characters, so that the notification channel's name fits PostgreSQL's limit`, where('tablePrefix'));
  }
  const maxEvents = options.maxEvents ?? 10_000_000;
  if (!Number.isInteger(maxEvents) || maxEvents < 1) throw new EgressConfigurationError(`expected a positive integer, got ${JSON.stringify(maxEvents)}`, where('maxEvents'));
  const quantity = (name: string, value: unknown, parse: (value: unknown) => number | { error: string }, minimum: number): number | undefined => {
    if (value === undefined) return undefined;
    const parsed = parse(value);
    if (typeof parsed !== 'number') throw new EgressConfigurationError(parsed.error, where(name));
    if (parsed < minimum) throw new EgressConfigurationError(`expected at least ${minimum}, got ${JSON.stringify(value)}`, where(name));
    return parsed;
  };
  const idleConnections = options.idleConnections ?? defaultIdleConnections;
  if (!Number.isInteger(idleConnections) || idleConnections < 0 || idleConnections > poolSize) {
    throw new EgressConfigurationError(`expected an integer from 0 to ${poolSize}, got ${JSON.stringify(idleConnections)}`, where('idleConnections'));
  }
  const spool = options.spool;
  const spoolPath = typeof spool === 'object' && spool !== null ? (spool as { path?: unknown }).path : spool;
  if (spool !== undefined && (typeof spoolPath !== 'string' || spoolPath.length === 0)) {
    throw new EgressConfigurationError('expected the path of a spool file, e.g. ".egress/spool.db", or { path }', where('spool'));
  }
  return {
    connectionString: options.connectionString,
    pool: options.pool,
    schema,
    tablePrefix,
    maxEvents,
    maxBytes: quantity('maxBytes', options.maxBytes, parseSize, 1) ?? 10 * 1024 ** 3,
    leaseMs: quantity('leaseMs', options.leaseMs, parseDuration, 1),
    pollInterval: quantity('pollInterval', options.pollInterval, parseDuration, 10) ?? 5000,
    spoolPath: spoolPath as string | undefined,
    connectTimeout: quantity('connectTimeout', options.connectTimeout, parseDuration, 1) ?? 10_000,
    queryTimeout: quantity('queryTimeout', options.queryTimeout, parseDuration, 1) ?? 30_000,
    idleConnections,
    idleTimeout: quantity('idleTimeout', options.idleTimeout, parseDuration, 1) ?? 10_000,
  };
}

interface DeadRow {
  id: string;
  destination: string;
  partition: string;
  payload: string;
  size: number;
  sent_at: string;
  attempts: number;
  trace: string | null;
  error_name: string;
  error_message: string;
  error_at: string;
  dead_at: string;
}

class PostgresStore implements Store {
  readonly kind = 'postgres';
  readonly durable = true;
  readonly claimAhead = pipelineDepth;
  private readonly names: SchemaNames;
  /** The pool behind error handling, timeouts and status: every statement goes through it. */
  private readonly pool: DatabaseConnection;
  private readonly connectionStatus = new ConnectionStatus();
  private readonly uncertainWrites: UncertainWrites;
  /** Number of this store's last enqueue write, recorded with it in the producer's row. */
  private writes = 0;
  private readonly spool: LocalSpool | undefined;
  private context: StoreContext | undefined;
  private opening: Promise<void> | undefined;
  private readonly recovery: OutageRecovery;
  /** The row of each partition's counters this store adds to (see migration 4). */
  private readonly counterSlot = randomInt(counterSlots);
  /** Identifies this store's notifications, so it does not wake itself. */
  private readonly source = randomUUID();
  private readonly notifications: WorkNotifications;
  private readonly writer: GroupCommit;
  private readonly settlements: SettlementGroup;
  /** Lease token of every batch this store holds, so a settlement after a takeover is ignored. */
  private readonly leases = new Map<string, string>();
  /** Widest claim seen per destination, 0 for FIFO destinations (whose next batch waits for the settlement). */
  private readonly claimWidths = new Map<string, number>();
  /** Approximate events and bytes held in the database, refreshed by counting and kept current locally. */
  private heldEvents = 0;
  private heldBytes = 0;
  /** Events accepted by `enqueue` and not yet committed. */
  private reservedEvents = 0;
  private reservedBytes = 0;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** Set once the periodic capacity count has started. */
  private counting = false;
  /**
   * Whether `admit` was asked since the last count. A process that only delivers never is, and does
   * not scan the tables every second for an estimate nobody reads; its first `admit` turns the
   * counting back on (until the next count it answers from the last one).
   */
  private admitting = true;
  private partitionsPrunedAt = Date.now();
  private opened = false;
  private closed = false;

  constructor(private readonly options: ResolvedOptions) {
    this.names = schemaNames(options.schema, options.tablePrefix);
    this.uncertainWrites = new UncertainWrites(this.names, this.source);
    this.pool = new DatabaseConnection(options, this.connectionStatus, (client) => migrate(client, this.names));
    this.spool = options.spoolPath === undefined ? undefined : new LocalSpool(options.spoolPath, this.names.scope);
    this.recovery = new OutageRecovery({
      pool: this.pool,
      status: this.connectionStatus,
      spool: this.spool,
      openDatabase: () => this.openDatabase(),
      insertEvents: (events) => this.insertEvents(events),
      logger: () => this.context?.logger,
    });
    this.connectionStatus.onChange((status) => this.statusChanged(status));
    this.notifications = new WorkNotifications(this.pool, this.names.channel, this.source, options.pollInterval);
    this.writer = new GroupCommit((events) => this.write(events), writeConcurrency);
    this.settlements = new SettlementGroup((requests) => this.writeSettlements(requests), settleConcurrency, settleHoldMs, (requests) => this.settlementsMayWait(requests));
  }

  /**
   * Connects and migrates. When PostgreSQL cannot be reached it rejects with
   * `EgressStoreUnavailableError` and may be called again; with a spool it resolves anyway, events go
   * to the spool, and the store keeps connecting in the background.
   */
  async open(context?: StoreContext): Promise<void> {
    if (context && !this.context) this.context = context;
    if (this.opened) return;
    this.opening ??= this.openOnce().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async openOnce(): Promise<void> {
    if (this.spool) {
      await this.spool.open();
      this.connectionStatus.setSpooled(this.spool.count);
    }
    try {
      await this.openDatabase();
    } catch (error) {
      // With a spool, events can be taken before PostgreSQL answers: they wait in the file.
      if (!this.spool || !EgressStoreUnavailableError.isInstance(error)) throw error;
      this.recovery.logOnce('warn', error, 'PostgreSQL cannot be reached; events go to the local spool until it answers');
    }
    this.opened = true;
    if (!this.pool.opened || (this.spool?.count ?? 0) > 0) this.recovery.schedule(0);
  }

  private async openDatabase(): Promise<void> {
    await this.pool.open();
    if (this.counting) return;
    this.counting = true;
    await this.refreshCapacity();
    await this.pool.warm(this.options.idleConnections, (client) => this.runHotStatements(client), warmUpLimit);
  }

  /**
   * The named statements of claims, settlements and writes, each run once with arguments that match
   * nothing (a destination no event has, no batches, no events); the caller rolls the transaction back.
   */
  private async runHotStatements(client: PoolClient): Promise<void> {
    const request = { destination: '', now: 0, owner: '', maxBatches: 1, maxEvents: 1, maxBytes: 1, maxDelay: 0, force: false, fifo: false, leaseMs: 1 };
    await claimSingleEventBatches(client, this.names, request, { until: 0, token: '' });
    await settleDelivered(client, this.names, this.counterSlot, []);
    await client.query(this.insertStatement([], 0));
  }

  status(): StoreStatus {
    return this.connectionStatus.current();
  }

  private statusChanged(status: StoreStatus): void {
    // Before open() has finished, open() itself decides what happens next.
    if (status.state === 'unreachable' && this.opened) this.recovery.schedule();
    if (status.state === 'connected') {
      this.recovery.reset();
      // Notifications sent while the database was away are lost: listen again and look for work now.
      if (this.opened) this.notifications.renew();
      if ((this.spool?.count ?? 0) > 0 && this.opened) this.recovery.schedule(0);
    }
    this.context?.statusChanged?.(status);
  }

  /** The engine counts the events it has accepted and not yet committed itself, so those in `enqueue` now are not added again here. */
  admit(events: number, bytes: number): boolean {
    this.admitting = true;
    return this.heldEvents + events <= this.options.maxEvents && this.heldBytes + bytes <= this.options.maxBytes;
  }

  async enqueue(events: readonly QueuedEvent[]): Promise<void> {
    if (events.length === 0) return;
    let bytes = 0;
    for (const event of events) bytes += event.size;
    if (!this.admit(this.reservedEvents + events.length, this.reservedBytes + bytes)) {
      throw new EgressCapacityError(
        `postgres store is full (about ${this.heldEvents + this.reservedEvents} of ${this.options.maxEvents} events, ${this.heldBytes + this.reservedBytes} of ${this.options.maxBytes} bytes)`,
      );
    }
    this.reservedEvents += events.length;
    this.reservedBytes += bytes;
    try {
      await this.writer.submit(events);
      this.heldEvents += events.length;
      this.heldBytes += bytes;
    } finally {
      this.reservedEvents -= events.length;
      this.reservedBytes -= bytes;
    }
  }

  /**
   * Writes the events through the application's transaction. Nothing is reserved: events rolled
   * back never count, and committed ones count from the next capacity count on.
   */
  async enqueueWithin(transaction: unknown, events: readonly QueuedEvent[]): Promise<void> {
    const within = asPostgresTransaction(transaction);
    if (events.length === 0) return;
    let bytes = 0;
    for (const event of events) bytes += event.size;
    if (!this.admit(this.reservedEvents + events.length, this.reservedBytes + bytes)) {
      throw new EgressCapacityError(`postgres store is full (about ${this.heldEvents + this.reservedEvents} of ${this.options.maxEvents} events); nothing was written through the ${within.library} transaction`);
    }
    await insertWithinTransaction(within, this.names, events);
  }

  /**
   * Writes one group of events: into PostgreSQL, or into the spool while PostgreSQL is unreachable
   * or the spool still holds events accepted earlier (new events go behind them, never before).
   */
  private async write(events: readonly QueuedEvent[]): Promise<void> {
    const spool = this.spool;
    if (spool && (spool.count > 0 || this.connectionStatus.current().state !== 'connected')) return this.spoolEvents(spool, events);
    try {
      await this.insertEvents(events);
    } catch (error) {
      if (!spool || !EgressStoreUnavailableError.isInstance(error)) throw error;
      this.spoolEvents(spool, events, error);
    }
  }

  private spoolEvents(spool: LocalSpool, events: readonly QueuedEvent[], cause?: unknown): void {
    try {
      spool.append(events);
    } catch (error) {
      // Neither place took the events: the engine keeps them and calls again.
      throw new EgressStoreUnavailableError('postgres', `PostgreSQL cannot be reached and the spool ${spool.path} could not take the events: ${describeError(error)}`, { cause: cause ?? error });
    }
    this.connectionStatus.setSpooled(spool.count);
    this.recovery.schedule();
  }

  /**
   * One statement, one round trip: insert the events in order, record the write's number in the
   * producer's row and notify listening workers at commit. The number is what lets a write whose
   * answer was lost be looked up before its events are written again (`UncertainWrites`).
   */
  private async insertEvents(all: readonly QueuedEvent[]): Promise<void> {
    const events = this.uncertainWrites.outstanding ? await this.uncertainWrites.withoutCommitted(all, this.pool) : all;
    if (events.length === 0) return;
    const write = ++this.writes;
    try {
      await this.pool.query(this.insertStatement(events, write), undefined, 'enqueueing events');
    } catch (error) {
      if (EgressStoreUnavailableError.isInstance(error)) this.uncertainWrites.remember(write, events);
      throw error;
    }
  }

  private insertStatement(events: readonly QueuedEvent[], write: number): QueryConfig {
    const { table } = this.names;
    return prepared(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::int[], $12::text[])
           WITH ORDINALITY AS t(id, destination, partition, payload, size, sent_at, attempts, trace, position)
       ), recorded AS (
         INSERT INTO ${table('producers')} AS p (producer, last_write, written_at) VALUES ($9, $10, $11)
         ON CONFLICT (producer) DO UPDATE SET last_write = EXCLUDED.last_write, written_at = EXCLUDED.written_at
         WHERE p.fence < EXCLUDED.last_write
         RETURNING 1
       ), notified AS (
         SELECT pg_notify($8, $9 || ' ' || destination) FROM (SELECT DISTINCT destination FROM input) AS destinations
       )
       INSERT INTO ${table('events')} (id, destination, partition, payload, size, sent_at, attempts, trace)
       SELECT id, destination, partition, payload, size, sent_at, attempts, trace FROM input
       WHERE EXISTS (SELECT 1 FROM recorded) AND (SELECT count(*) FROM notified) >= 0
       ORDER BY position
       ON CONFLICT (id) DO NOTHING`,
      [
        events.map((event) => event.id),
        events.map((event) => event.destination),
        events.map((event) => event.partition),
        events.map((event) => event.payload),
        // Sizes are whole bytes in the table; an adapter that measures fractions is rounded up.
        events.map((event) => Math.max(0, Math.ceil(event.size))),
        events.map((event) => event.sentAt),
        events.map((event) => event.attempts),
        this.names.channel,
        this.source,
        write,
        Date.now(),
        events.map((event) => event.trace ?? null),
      ],
    );
  }

  async claim(request: ClaimRequest): Promise<ClaimResult> {
    const lease = { until: request.now + (this.options.leaseMs ?? request.leaseMs), token: randomUUID() };
    const result = claimsSingleEvents(request)
      ? await claimSingleEventBatches(this.statements('claiming batches'), this.names, request, lease)
      : await this.transaction((client) => claimBatches(client, this.names, request, lease));
    for (const batch of result.batches) this.leases.set(batch.id, lease.token);
    this.claimWidths.set(request.destination, request.fifo ? 0 : Math.max(this.claimWidths.get(request.destination) ?? 0, request.maxBatches));
    this.notifications.claimed(request.destination, result.batches.length > 0);
    return result;
  }

  /**
   * Whether the waiting settlements may wait for more: all of them deliver their whole batch (the
   * engine starts the next delivery without waiting for those), none is for a FIFO destination,
   * and few enough wait that the engine keeps delivering meanwhile.
   */
  private settlementsMayWait(requests: readonly SettlementRequest[]): boolean {
    const waiting = new Map<string, number>();
    for (const request of requests) {
      if (!deliversWholeBatch(request)) return false;
      const { destination } = request.claimed;
      const count = (waiting.get(destination) ?? 0) + 1;
      if (count >= (this.claimWidths.get(destination) ?? 0) * heldShareOfClaim) return false;
      waiting.set(destination, count);
    }
    return true;
  }

  async settle(claimed: ClaimedBatch, settlement: Settlement): Promise<void> {
    // The lease token is kept until the settlement is written: a settlement retried after a lost
    // connection must still be ignored if another worker has taken the batch over meanwhile.
    const removed = await this.settlements.submit({ claimed, token: this.leases.get(claimed.id), settlement });
    this.leases.delete(claimed.id);
    this.heldEvents = Math.max(0, this.heldEvents - removed.events);
    this.heldBytes = Math.max(0, this.heldBytes - removed.bytes);
  }

  /** One group of settlements: fully delivered batches in one statement, the others one by one, all in one transaction. */
  private async writeSettlements(requests: readonly SettlementRequest[]): Promise<Removed[]> {
    const whole = requests.filter(deliversWholeBatch);
    if (whole.length === requests.length) return settleDelivered(this.statements('settling batches'), this.names, this.counterSlot, requests);
    return this.transaction(async (client) => {
      const removed = new Map<SettlementRequest, Removed>();
      if (whole.length > 0) {
        const wholeRemoved = await settleDelivered(client, this.names, this.counterSlot, whole);
        whole.forEach((request, index) => removed.set(request, wholeRemoved[index]!));
      }
      for (const request of requests) {
        if (!removed.has(request)) removed.set(request, await settleBatch(client, this.names, this.counterSlot, request, (destination) => this.notify(client, destination)));
      }
      return requests.map((request) => removed.get(request)!);
    });
  }

  async release(claimed: ClaimedBatch): Promise<void> {
    const token = this.leases.get(claimed.id);
    this.leases.delete(claimed.id);
    const { table } = this.names;
    await this.pool.query(
      `WITH released AS (
         UPDATE ${table('batches')} SET lease_until = NULL, lease_token = NULL, owner = NULL, available_at = 0
         WHERE id = $1 AND lease_until IS NOT NULL AND ($2::text IS NULL OR lease_token = $2)
         RETURNING id, destination
       ), restored AS (
         UPDATE ${table('events')} e SET attempts = greatest(0, e.attempts - 1) FROM released WHERE e.batch_id = released.id
       ), notified AS (
         SELECT pg_notify($3, $4 || ' ' || destination) FROM released
       )
       SELECT (SELECT count(*) FROM notified) AS count`,
      [claimed.id, token ?? null, this.names.channel, this.source],
    );
  }

  private async notify(client: PoolClient, destination: string): Promise<void> {
    await client.query('SELECT pg_notify($1, $2)', [this.names.channel, `${this.source} ${destination}`]);
  }

  async partitionStates(query: { destination?: string }): Promise<PartitionState[]> {
    return readPartitionStates(this.statements('reading partition states'), this.names, query.destination);
  }

  async setPartitionState(change: PartitionStateChange): Promise<boolean> {
    const written = await writePartitionState(this.statements('writing a partition state'), this.names, change);
    // Workers waiting for work hear at once that a partition delivers again.
    if (written && change.next === undefined) {
      await this.statements('announcing an enabled partition').query({ text: 'SELECT pg_notify($1, $2)', values: [this.names.channel, `${this.source} ${change.destination}`] });
    }
    return written;
  }

  async watermark(): Promise<number> {
    const result = await this.pool.query<{ mark: string }>(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS mark FROM ${this.names.sequence('event_seq')}`);
    return Number(result.rows[0]!.mark);
  }

  async pendingAtOrBelow(mark: number): Promise<boolean> {
    const result = await this.pool.query<{ pending: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${this.names.table('events')} WHERE seq <= $1) AS pending`, [mark]);
    return result.rows[0]!.pending;
  }

  async eventState(eventId: string): Promise<'pending' | 'dead' | 'gone'> {
    const { table } = this.names;
    const result = await this.pool.query<{ state: 'pending' | 'dead' }>(
      `SELECT 'pending' AS state FROM ${table('events')} WHERE id = $1 UNION ALL SELECT 'dead' FROM ${table('dead_letters')} WHERE id = $1 LIMIT 1`,
      [eventId],
    );
    return result.rows[0]?.state ?? 'gone';
  }

  async listDead(query: DeadLetterQuery): Promise<StoredDeadLetter[]> {
    const result = await this.pool.query<DeadRow>(
      `SELECT * FROM ${this.names.table('dead_letters')}
       WHERE ($1::text IS NULL OR destination = $1) AND ($2::text[] IS NULL OR id = ANY($2)) AND ($3::text IS NULL OR id > $3)
       ORDER BY id LIMIT $4`,
      [query.destination ?? null, query.ids ?? null, query.after ?? null, query.limit ?? 100],
    );
    return result.rows.map((row) => ({
      event: toQueuedEvent(row, row.destination, row.partition),
      error: { name: row.error_name, message: row.error_message, at: Number(row.error_at) },
      deadAt: Number(row.dead_at),
    }));
  }

  async retryDead(ids: readonly string[] | undefined, query: { destination?: string; now: number }): Promise<number> {
    const { table } = this.names;
    const result = await this.pool.query<{ count: string }>(
      `WITH moved AS (
         DELETE FROM ${table('dead_letters')} WHERE ($1::text[] IS NULL OR id = ANY($1)) AND ($2::text IS NULL OR destination = $2)
         RETURNING id, destination, partition, payload, size, trace
       ), queued AS (
         INSERT INTO ${table('events')} (id, destination, partition, payload, size, sent_at, attempts, trace)
         SELECT id, destination, partition, payload, size, $3, 0, trace FROM moved ORDER BY id
         RETURNING destination
       ), notified AS (
         SELECT pg_notify($4, $5 || ' ' || destination) FROM (SELECT DISTINCT destination FROM queued) AS destinations
       )
       SELECT (SELECT count(*) FROM queued) AS count, (SELECT count(*) FROM notified) AS notified`,
      [ids ?? null, query.destination ?? null, query.now, this.names.channel, this.source],
    );
    return Number(result.rows[0]!.count);
  }

  async purgeDead(ids: readonly string[] | undefined, query: { destination?: string }): Promise<number> {
    const result = await this.pool.query<{ count: string; bytes: string }>(
      `WITH purged AS (
         DELETE FROM ${this.names.table('dead_letters')} WHERE ($1::text[] IS NULL OR id = ANY($1)) AND ($2::text IS NULL OR destination = $2) RETURNING size
       )
       SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes FROM purged`,
      [ids ?? null, query.destination ?? null],
    );
    const count = Number(result.rows[0]!.count);
    this.heldEvents = Math.max(0, this.heldEvents - count);
    this.heldBytes = Math.max(0, this.heldBytes - Number(result.rows[0]!.bytes));
    return count;
  }

  async stats(now: number): Promise<StoreStats[]> {
    const { table } = this.names;
    const result = await this.pool.query<{
      destination: string;
      partition: string;
      waiting: string;
      in_flight: string;
      dead: string;
      delivered: string;
      failed: string;
      oldest: string | null;
    }>(
      `WITH queued AS (
         SELECT e.destination, e.partition,
                count(*) FILTER (WHERE b.lease_until IS NULL OR b.lease_until <= $1) AS waiting,
                count(*) FILTER (WHERE b.lease_until > $1) AS in_flight,
                0::bigint AS dead, 0::bigint AS delivered, 0::bigint AS failed,
                min(e.sent_at) AS oldest
         FROM ${table('events')} e LEFT JOIN ${table('batches')} b ON b.id = e.batch_id
         GROUP BY e.destination, e.partition
       ), dead AS (
         SELECT destination, partition, 0::bigint, 0::bigint, count(*), 0::bigint, 0::bigint, NULL::bigint FROM ${table('dead_letters')} GROUP BY destination, partition
       ), totals AS (
         SELECT destination, partition, 0::bigint, 0::bigint, 0::bigint, delivered, failed, NULL::bigint FROM ${table('counters')}
       )
       SELECT destination, partition, sum(waiting) AS waiting, sum(in_flight) AS in_flight, sum(dead) AS dead,
              sum(delivered) AS delivered, sum(failed) AS failed, min(oldest) AS oldest
       FROM (SELECT * FROM queued UNION ALL SELECT * FROM dead UNION ALL SELECT * FROM totals) AS rows
       GROUP BY destination, partition
       ORDER BY 1, 2`,
      [now],
    );
    return result.rows.map((row) => ({
      destination: row.destination,
      partition: row.partition,
      waiting: Number(row.waiting),
      inFlight: Number(row.in_flight),
      dead: Number(row.dead),
      delivered: Number(row.delivered),
      failed: Number(row.failed),
      oldestSentAt: row.oldest === null ? undefined : Number(row.oldest),
    }));
  }

  subscribe(listener: (destination: string | undefined) => void): () => void {
    return this.notifications.subscribe(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.writer.idle();
    this.closed = true;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    await this.settlements.idle();
    await this.recovery.stop();
    if (this.spool) {
      // Whatever cannot be moved now stays in the file and is moved by the next store that opens it.
      if (this.spool.count > 0 && this.connectionStatus.current().state === 'connected') await this.recovery.moveSpool().catch(() => undefined);
      this.spool.close();
    }
    await this.notifications.stop();
    await this.pool.end();
  }

  /** Counts what the database holds (every process's events) and schedules the next count. */
  private async refreshCapacity(): Promise<void> {
    const { table } = this.names;
    const started = Date.now();
    let took = 0;
    if (this.admitting) {
      this.admitting = false;
      try {
        const result = await this.pool.query<{ events: string; bytes: string }>(
          `SELECT (SELECT count(*) FROM ${table('events')}) + (SELECT count(*) FROM ${table('dead_letters')}) AS events,
                  (SELECT coalesce(sum(size), 0) FROM ${table('events')}) + (SELECT coalesce(sum(size), 0) FROM ${table('dead_letters')}) AS bytes`,
        );
        // Spooled events are not in the tables yet but count against capacity all the same.
        this.heldEvents = Number(result.rows[0]!.events) + (this.spool?.count ?? 0);
        this.heldBytes = Number(result.rows[0]!.bytes);
        took = Date.now() - started;
      } catch {
        // Keep the local estimate; the next count may succeed.
        this.admitting = true;
      }
    }
    if (Date.now() - this.partitionsPrunedAt >= partitionPruneInterval) {
      this.partitionsPrunedAt = Date.now();
      // Rows of partitions that have gone quiet only order the round-robin; a partition that gets
      // events again simply starts at the front.
      await this.pool
        .query(
          `DELETE FROM ${table('partitions')} p
           WHERE NOT EXISTS (SELECT 1 FROM ${table('events')} e WHERE e.destination = p.destination AND e.partition = p.partition)
             AND NOT EXISTS (SELECT 1 FROM ${table('batches')} b WHERE b.destination = p.destination AND b.partition = p.partition)`,
        )
        .catch(() => undefined);
      // A producer's row is only read after one of its writes went unanswered, which that process
      // settles as soon as the database answers again; rows of producers long gone only take room.
      await this.pool.query(`DELETE FROM ${table('producers')} WHERE written_at < $1`, [Date.now() - producerRetention]).catch(() => undefined);
    }
    if (this.closed) return;
    // Only a count that ran says how costly counting is; one that waited for an unreachable database does not.
    const delay = Math.max(capacityRefreshMin, took * capacityRefreshFactor);
    this.refreshTimer = setTimeout(() => void this.refreshCapacity(), delay);
    this.refreshTimer.unref();
  }

  private transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.pool.transaction(work);
  }

  /** One statement at a time on a pooled connection, under the connection layer's timeouts and failure handling. */
  private statements(doing: string): Queryable {
    return { query: (config) => this.pool.withClient((client) => client.query(config), doing) };
  }
}
