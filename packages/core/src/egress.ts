import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { checkDeadLetterRoutes, DeadLetterRouter } from './dead-letter-routing.js';
import { CommitBuffer, commitBufferLimits, commitGroup, type CommitGroup } from './commit-buffer.js';
import { DeliveryLane, type EventOutcome, type LaneHost } from './delivery-lane.js';
import { DeliveryStatistics } from './delivery-statistics.js';
import { assertDestination, type AnyDestination, type Destination, type HealthReport } from './destination.js';
import { EventHub, type EgressEventName, type EgressEvents, type EgressStoreStatus } from './egress-events.js';
import {
  EgressCapacityError,
  EgressClosedError,
  EgressConfigurationError,
  EgressError,
  EgressStoreError,
  EgressStoreUnavailableError,
  EgressTimeoutError,
  EgressValidationError,
  describeCause,
} from './errors.js';
import { createEventId } from './event-id.js';
import type { LatencySummary } from './latency-histogram.js';
import { consoleLogger, type Logger } from './logger.js';
import { memoryStore } from './memory-store.js';
import { decodePayload, encodePayload } from './payload-codec.js';
import type { PolicyOptions } from './policy-options.js';
import { resolvePolicy, type ResolvedPolicy } from './policy.js';
import { AcceptedReceipt, droppedReceipt, type DeliveryOutcome, type Receipt } from './receipt.js';
import { storeBackoff } from './store-backoff.js';
import { StoreConnection } from './store-connection.js';
import { StoreWriter } from './store-writer.js';
import type { ErrorRecord, QueuedEvent, Store } from './store.js';
import { maxTraceLength, type Tracing } from './tracing.js';
import { parseDuration, type Duration, type Size } from './units.js';
import { allDestinationsRedactor, deliveryRedactor, destinationRedactor, redactedPayload, redactStrings } from './destination-secrets.js';
import { redactingLogger } from './redacting-logger.js';
import { SecretRedactor } from './secret-redaction.js';
import { inputLimitsOf, snapshotInput, unencodableIssue } from './input-snapshot.js';
import { assertTransactionalStore, untrackedOutcomes, writeWithinTransaction, type TransactionalUnitHost } from './transactional-unit.js';
import { validateInput } from './validation.js';
import { AlertDispatcher } from './alerts/alert-dispatcher.js';
import { resolveAlertRules, type AlertRule } from './alerts/alert-rule.js';
import { PartitionAdmin } from './partition-admin.js';
import type { PartitionState } from './store.js';

export interface EgressOptions<Destinations extends readonly AnyDestination[]> {
  /** The destinations `send` can reach; each name becomes `send.<name>`. */
  destinations: Destinations;
  /** Where events wait; the memory store (bounded, not durable) when not given. */
  store?: Store;
  /** Policy per destination name, over the adapter's defaults. */
  policies?: { [Name in Destinations[number]['name']]?: PolicyOptions };
  /** Receives warnings and errors; a pino logger fits. */
  logger?: Logger;
  /**
   * When the store or the commit buffer is full: `'reject'` throws `EgressCapacityError` from
   * `send`, `'drop'` counts and reports the event instead.
   */
  overflow?: 'reject' | 'drop';
  /**
   * Bounds the events accepted and not yet committed to the store, held in this process's memory:
   * sends outside a unit of work wait there while the store is unreachable, and are written again
   * with backoff until it takes them. When it is full, `send` fails at the call (see `overflow`).
   * Default: 1,000,000 events and 256 MiB of encoded payload.
   */
  commitBuffer?: { maxEvents?: number; maxBytes?: Size };
  /**
   * `'retry'` (default): the store is opened in the background and opened again with backoff while
   * its database is unreachable; `ready()` resolves once it is open, and sends wait in the commit
   * buffer meanwhile. `'fail-fast'`: the first failure to open is final, and `ready()` rejects with it.
   */
  startup?: 'retry' | 'fail-fast';
  /** `'producer'` only enqueues, `'worker'` only delivers, `'both'` (default) does both. */
  role?: 'both' | 'producer' | 'worker';
  /**
   * How often to look for work that other processes enqueued, for stores shared between processes
   * that cannot announce it (`subscribe`). Default: every second for a `'worker'` on such a store,
   * never otherwise.
   */
  pollInterval?: Duration;
  /**
   * Follows each event from `send` to its deliveries in a tracing library, e.g.
   * `openTelemetryTracing()` from `@egress/opentelemetry`. Off when not given, at no cost.
   */
  tracing?: Tracing;
  /** Alert rules: what to watch for (dead letters, paused or disabled partitions, an old waiting event) and where to send it. */
  alerts?: readonly AlertRule[];
}

/** `send.<name>(input)` for every registered destination, typed from its input schema. */
export type SendFunctions<Destinations extends readonly AnyDestination[]> = {
  readonly [Destination in Destinations[number] as Destination['name']]: (input: StandardSchemaV1.InferInput<Destination['input']>) => Receipt;
};

export interface RunOptions {
  /** What happens to the sends of a unit of work that throws: `'discard'` (default) or `'deliver'`. */
  onError?: 'discard' | 'deliver';
  /**
   * The application's open transaction, in the form the store takes (e.g. `knexTransaction(trx)` from
   * @egress/store-postgres): the unit's events are written through it when `fn` resolves, so they
   * commit or roll back with the application's rows, and are delivered only after it commits.
   * `run` resolves once they are written within it; commit after that.
   */
  transaction?: unknown;
}

export interface RunSyncOptions {
  /** The application's open transaction of a store that writes synchronously: the better-sqlite3 database. */
  transaction: unknown;
}

export interface CloseOptions {
  /** How long to wait for open batches and in-flight deliveries (default 10 s); the rest stays in the store. */
  timeout?: Duration;
}

export interface FlushOptions {
  /** Give up waiting after this long, rejecting with `EgressTimeoutError`; nothing is lost. */
  timeout?: Duration;
}

/** A dead letter as the API shows it: the payload passed through the adapter's `redact`. */
export interface DeadLetter {
  id: string;
  destination: string;
  partition: string;
  payload: unknown;
  sentAt: number;
  attempts: number;
  error: ErrorRecord;
  deadAt: number;
}

export interface PartitionStats {
  partition: string;
  waiting: number;
  inFlight: number;
  /** Events delivered, as the store recorded them: every process sharing the store counts. */
  delivered: number;
  /** Failed attempts (per event, each retry and each dead-lettering), as the store recorded them. */
  failed: number;
  dead: number;
  /** Milliseconds the oldest queued event has waited. */
  oldestAge: number | undefined;
  /** Delivery latency of the events this process delivered. */
  latency: LatencySummary | undefined;
  /** With adaptive concurrency, the batches this partition may have in flight in this process now. */
  concurrencyLimit?: number;
  /** Set while the partition is paused by circuit breaking or disabled (see `partitions()`). */
  state?: 'paused' | 'disabled';
}

export interface DestinationStats extends Omit<PartitionStats, 'partition'> {
  destination: string;
  /** Events dropped at `send` because the store or the commit buffer was full. */
  dropped: number;
  /** Events accepted by this process and waiting in its commit buffer for the store. */
  buffered: number;
  /** Events accepted by this process that never reached the store (see the `lost` event). */
  lost: number;
  /**
   * Batches this process may deliver at once now: the fixed `concurrency`, or with adaptive
   * concurrency the sum of its partitions' limits within the ceiling. Undefined where this process delivers nothing (a producer).
   */
  concurrencyLimit: number | undefined;
  partitions: PartitionStats[];
}

/**
 * The default type argument accepts any concrete `Egress` (its send functions take `never`), so
 * code that only flushes, closes or inspects can hold one without naming its destinations.
 */
export interface Egress<Destinations extends readonly AnyDestination[] = readonly Destination<string, never, unknown>[]> {
  /** Validates and enqueues; inside `run` the event joins that unit of work. */
  readonly send: SendFunctions<Destinations>;
  /** Runs one unit of work: its sends are committed together when `fn` resolves, discarded if it throws. */
  run<T>(fn: (send: SendFunctions<Destinations>) => Promise<T> | T, options?: RunOptions): Promise<T>;
  /**
   * Runs a synchronous unit of work inside the application's synchronous transaction (better-sqlite3's
   * `db.transaction`): its sends are written through `options.transaction` before it returns. Throws
   * what `fn` threw (nothing written) or why the write failed, so the application's transaction rolls back.
   */
  runSync<T>(fn: (send: SendFunctions<Destinations>) => T, options: RunSyncOptions): T;
  /** Resolves when everything enqueued before the call was delivered or dead-lettered. */
  flush(options?: FlushOptions): Promise<void>;
  /** Stops intake, delivers open batches, waits for in-flight work up to a timeout; idempotent. */
  close(options?: CloseOptions): Promise<void>;
  /** Resolves once the store is open and every destination started (see `startup`). */
  ready(): Promise<void>;
  /**
   * Per destination and partition: waiting, in flight, delivered, failed, dead, oldest age, latency.
   * Rejects with `EgressStoreUnavailableError` at once while the store is unreachable; `storeStatus()`
   * answers then.
   */
  stats(): Promise<DestinationStats[]>;
  /** Where the store stands (connecting, connected, unreachable since when, failed) and what waits for it here. */
  storeStatus(): EgressStoreStatus;
  /** Each destination's `health()`, or `{ ok: true }` when it has none. */
  health(): Promise<Record<string, HealthReport>>;
  readonly deadLetters: {
    list(query?: { destination?: string; limit?: number; after?: string }): Promise<DeadLetter[]>;
    /** Puts dead letters (all, or these ids) back in the queue; returns how many. */
    retry(ids?: readonly string[], query?: { destination?: string }): Promise<number>;
    /** Deletes dead letters (all, or these ids); returns how many. */
    purge(ids?: readonly string[], query?: { destination?: string }): Promise<number>;
  };
  /** Paused and disabled partitions, as the store keeps them: every process sharing the store sees the same. */
  partitions(query?: { destination?: string }): Promise<PartitionState[]>;
  /** Puts a paused or disabled partition back to delivery, or every one of the destination when none is named; returns how many. */
  enable(destination: string, partition?: string): Promise<number>;
  /** Stops delivering one partition until it is enabled (its events wait); returns false when it was disabled already. */
  disable(destination: string, partition: string, reason?: string): Promise<boolean>;
  /** Subscribes to `delivered`, `retrying`, `dead`, `dropped`, `lost`, `paused`, `resumed`, `disabled`, `store` or `concurrency`; returns the unsubscribe function. */
  on<Name extends EgressEventName>(name: Name, listener: (event: EgressEvents[Name]) => void): () => void;
}

export function createEgress<const Destinations extends readonly AnyDestination[]>(options: EgressOptions<Destinations>): Egress<Destinations> {
  return new EgressEngine(options) as unknown as Egress<Destinations>;
}

interface UnitOfWork {
  readonly group: CommitGroup;
  finished: boolean;
  /** Written through the application's transaction, whose commit the engine does not see. */
  readonly transactional?: boolean;
}

interface Registration {
  readonly destination: AnyDestination;
  readonly policy: ResolvedPolicy;
  lane: DeliveryLane | undefined;
}

type SendFunction = (input: unknown) => Receipt;

class EgressEngine implements LaneHost {
  readonly store: Store;
  readonly logger: Logger;
  readonly events: EventHub;
  readonly statistics = new DeliveryStatistics();
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  readonly tracing: Tracing | undefined;
  readonly send: Record<string, SendFunction>;
  readonly deadLetters: Egress['deadLetters'];
  readonly deadLetterRouter: DeadLetterRouter;

  private readonly registrations = new Map<string, Registration>();
  private redactor = new SecretRedactor();
  private redactorFor = 0;
  private readonly units = new AsyncLocalStorage<UnitOfWork>();
  /** Units of work whose function has not returned yet. */
  private openUnits = 0;
  private readonly overflow: 'reject' | 'drop';
  private readonly role: 'both' | 'producer' | 'worker';
  private readonly started: Promise<void>;
  private readonly connection: StoreConnection;
  private readonly commits: CommitBuffer;
  private state: 'open' | 'closing' = 'open';
  private closing: Promise<void> | undefined;
  /** Set when `close()` stopped waiting for a store that was still opening. */
  private startAbandoned = false;
  private forcingCount = 0;
  private readonly outcomeWaiters = new Map<string, Set<(outcome: DeliveryOutcome) => void>>();
  /** Created when a flush or shutdown waits for the next settlement, resolved by it. */
  private settleSignal: { promise: Promise<void>; resolve(): void } | undefined;
  private settleWakeScheduled = false;
  private unsubscribeStore: (() => void) | undefined;
  private readonly pollInterval: number | undefined;
  private poller: NodeJS.Timeout | undefined;
  private readonly partitionAdmin: PartitionAdmin;
  private readonly alerts: AlertDispatcher | undefined;

  constructor(options: EgressOptions<readonly AnyDestination[]>) {
    if (typeof options !== 'object' || options === null) throw new EgressConfigurationError('expected an options object', 'createEgress');
    // Every log line passes the redaction step, whatever logged it.
    this.logger = redactingLogger(options.logger ?? consoleLogger, () => this.logRedactor());
    this.events = new EventHub(this.logger, (text) => this.logRedactor().redact(text));
    this.store = options.store ?? memoryStore();
    this.overflow = oneOf(options.overflow, ['reject', 'drop'], 'overflow') ?? 'reject';
    this.role = oneOf(options.role, ['both', 'producer', 'worker'], 'role') ?? 'both';
    const startup = oneOf(options.startup, ['retry', 'fail-fast'], 'startup') ?? 'retry';
    this.tracing = tracingHooks(options.tracing);
    const limits = commitBufferLimits(options.commitBuffer);
    this.connection = new StoreConnection(this.store, { logger: this.logger, events: this.events, buffered: () => this.commits.buffered, reachable: () => this.reachable() }, startup);
    this.commits = new CommitBuffer(new StoreWriter(this.store, this.connection, this.logger, this.events, this.statistics, (events) => this.wakeFor(events)), limits);
    const polls = this.role === 'worker' && !this.store.subscribe;
    this.pollInterval = options.pollInterval === undefined ? (polls ? 1000 : undefined) : duration(options.pollInterval, 'pollInterval') || undefined;
    if (!Array.isArray(options.destinations) || options.destinations.length === 0) {
      throw new EgressConfigurationError('expected at least one destination', 'destinations');
    }
    const policies = (options.policies ?? {}) as Record<string, unknown>;
    for (const destination of options.destinations) {
      assertDestination(destination);
      if (this.registrations.has(destination.name)) {
        throw new EgressConfigurationError(`two destinations are named "${destination.name}"`, 'destinations');
      }
      const policy = resolvePolicy(destination, policies[destination.name], `policies.${destination.name}`, this.logger);
      this.registrations.set(destination.name, { destination, policy, lane: undefined });
    }
    for (const name of Object.keys(policies)) {
      if (!this.registrations.has(name)) {
        throw new EgressConfigurationError(`no destination is named "${name}" (registered: ${[...this.registrations.keys()].join(', ')})`, `policies.${name}`);
      }
    }
    checkDeadLetterRoutes(new Map([...this.registrations].map(([name, { destination, policy }]) => [name, { destination, routing: policy.deadLetters }])));
    // Routed dead letters are queued while a shutdown drains too, and never join a caller's unit of work.
    this.deadLetterRouter = new DeadLetterRouter(this.logger, (name, input) => this.enqueue(name, input, false));
    for (const { destination, policy } of this.registrations.values()) {
      if (policy.circuit && !(this.store.setPartitionState && this.store.partitionStates)) {
        throw new EgressConfigurationError(`the ${this.store.kind} store keeps no partition states, which circuit breaking needs`, `policies.${destination.name}.circuit`);
      }
    }
    this.partitionAdmin = new PartitionAdmin(this.store, this.events, (name, at) => this.checkDestinationName(name, at));
    const alertRules = resolveAlertRules(options.alerts, new Set(this.registrations.keys()));
    if (alertRules.length > 0) {
      this.alerts = new AlertDispatcher(
        {
          events: this.events,
          logger: this.logger,
          redact: (text) => this.logRedactor().redact(text),
          // An alert is queued on its own, like a routed dead letter: never in a caller's unit of work.
          send: (destination, input) => void this.enqueue(destination, input, false).committed().catch(() => {}),
          stats: async () => {
            await this.connection.whenOpen();
            return this.store.stats(Date.now());
          },
        },
        alertRules,
      );
    }
    this.send = this.createSendFunctions();
    this.deadLetters = {
      list: (query) => this.listDead(query),
      retry: (ids, query) => this.retryDead(ids, query),
      purge: async (ids, query) => {
        await this.connection.whenOpen();
        return this.store.purgeDead(ids, { destination: query?.destination });
      },
    };
    this.started = this.start();
    // Failures surface through ready(), commits and the logger; never as an unhandled rejection.
    this.started.catch((error: unknown) => {
      // A store that could not be opened was reported by the connection already.
      if (this.state === 'open' && this.connection.failedWith === undefined) this.logger.error({ error }, 'could not start');
    });
  }

  /** The secrets of every registered destination; worked out again if a log line came before all were registered. */
  private logRedactor(): SecretRedactor {
    if (this.redactorFor !== this.registrations.size) {
      this.redactor = allDestinationsRedactor([...this.registrations.values()].map(({ destination }) => destination));
      this.redactorFor = this.registrations.size;
    }
    return this.redactor;
  }

  private async start(): Promise<void> {
    this.connection.opened.catch((error: unknown) => {
      if (this.state !== 'open') return;
      this.commits.stop(new EgressStoreError(this.store.kind, 'the store could not be opened', { cause: error }));
    });
    this.connection.start();
    await this.connection.opened;
    // The shutdown stopped waiting for this open: it closes the store afterwards, and nothing starts.
    if (this.startAbandoned) return;
    await Promise.all([...this.registrations.values()].map(({ destination }) => destination.start?.({ logger: this.logger })));
    if (this.role === 'producer') return;
    for (const registration of this.registrations.values()) {
      registration.lane = new DeliveryLane(this, registration.destination, registration.policy);
      registration.lane.wake();
    }
    this.alerts?.start();
    this.unsubscribeStore = this.store.subscribe?.((destination) => this.wake(destination));
    if (this.pollInterval !== undefined && this.state === 'open') this.poller = setInterval(() => this.wake(), this.pollInterval);
  }

  ready(): Promise<void> {
    return this.started;
  }

  storeStatus(): EgressStoreStatus {
    const status = this.connection.status();
    return status.error === undefined ? status : { ...status, error: this.logRedactor().redact(status.error) };
  }

  storeFailed(error: unknown): void {
    this.connection.failed(error);
  }

  storeSucceeded(): void {
    this.connection.succeeded();
  }

  /** The store opened or came back: what waits for it goes now. */
  private reachable(): void {
    this.commits.retryNow();
    this.wake();
  }

  forcing(): boolean {
    return this.forcingCount > 0;
  }

  on<Name extends EgressEventName>(name: Name, listener: (event: EgressEvents[Name]) => void): () => void {
    return this.events.on(name, listener);
  }

  // ---- sending -------------------------------------------------------------------------------

  private createSendFunctions(): Record<string, SendFunction> {
    const registered = [...this.registrations.keys()];
    // Own properties answer the registered names; anything else falls through to the proxy, which
    // says which names exist instead of failing with "is not a function".
    const fallback = new Proxy(Object.create(null) as object, {
      get: (_target, property) => {
        if (typeof property === 'symbol' || property === 'then' || property === 'toJSON') return undefined;
        throw new EgressValidationError(String(property), [{ path: '', message: `no destination is registered under this name (registered: ${registered.join(', ')})` }]);
      },
    });
    const send = Object.create(fallback) as Record<string, SendFunction>;
    for (const name of registered) send[name] = (input: unknown) => this.accept(name, input);
    return Object.freeze(send);
  }

  private accept(name: string, input: unknown): Receipt {
    if (this.state !== 'open') throw new EgressClosedError();
    return this.enqueue(name, input, true);
  }

  private enqueue(name: string, input: unknown, joinsUnitOfWork: boolean): Receipt {
    const storeFailure = this.connection.failedWith;
    if (storeFailure !== undefined) throw new EgressStoreError(this.store.kind, 'the store could not be opened; no events are accepted', { cause: storeFailure });
    const { destination, policy } = this.registrations.get(name)!;
    // One snapshot is both what the schema checks and what is queued: a getter, a Proxy or a later
    // change to the caller's objects cannot make them differ.
    const limits = inputLimitsOf(destination);
    const snapshot = snapshotInput(input, limits);
    if ('issue' in snapshot) throw new EgressValidationError(name, [snapshot.issue]);
    const payload = validateInput(name, destination.input, snapshot.value);
    let serialized: string;
    try {
      serialized = encodePayload(payload);
    } catch (error) {
      throw new EgressValidationError(name, [unencodableIssue(payload, limits, error)]);
    }
    if (serialized.length > limits.maxInputBytes) {
      throw new EgressValidationError(name, [{ path: '', message: `the input is larger than ${limits.maxInputBytes} bytes as JSON, the most ${name} accepts in one $send` }]);
    }
    let partition: string;
    let size: number;
    try {
      partition = policy.batch.partitionBy?.(payload) ?? destination.partition?.(payload) ?? '';
      size = destination.measure?.(payload, serialized) ?? Buffer.byteLength(serialized);
    } catch (error) {
      throw new EgressValidationError(name, [{ path: '', message: `the payload could not be prepared: ${describeCause(error)}` }]);
    }
    const hardLimit = destination.limits?.maxBytes;
    if (hardLimit !== undefined && size > hardLimit) {
      throw new EgressValidationError(name, [{ path: '', message: `the event is ${size} bytes; ${name} accepts at most ${hardLimit} bytes in one delivery` }]);
    }
    const id = createEventId();
    const { commits } = this;
    if (!commits.fits(size)) {
      const message = `the commit buffer is full (${commits.held.events} events accepted and not yet taken by the ${this.store.kind} store; limit ${commits.limits.maxEvents} events, ${commits.limits.maxBytes} bytes); ${name} event refused`;
      return this.overflowed(id, name, message);
    }
    if (!this.store.admit(commits.unhandedEvents + 1, commits.unhandedBytes + size)) {
      return this.overflowed(id, name, `the ${this.store.kind} store is full; ${name} event refused`);
    }
    const sentAt = Date.now();
    const trace = this.tracing === undefined ? undefined : this.traceOfSend(this.tracing, name, id);
    // Built whole, with or without its trace: a field added afterwards would give the event object a second shape.
    const event: QueuedEvent =
      trace === undefined
        ? { id, destination: name, partition, payload: serialized, size, sentAt, attempts: 0 }
        : { id, destination: name, partition, payload: serialized, size, sentAt, attempts: 0, trace };
    // Asking the async context costs a little on every send; with no unit of work open there is no need.
    const unit = joinsUnitOfWork && this.openUnits > 0 ? this.units.getStore() : undefined;
    const group = unit && !unit.finished ? unit.group : commits.groupOfThisTick();
    group.events.push(event);
    group.bytes += size;
    commits.hold(size);
    // The receipt keeps only the commit's promise, not the group: a receipt held after delivery must
    // not keep every payload of its burst alive.
    return new AcceptedReceipt(id, name, group.done, unit?.transactional ? untrackedOutcomes : this);
  }

  /** The send's trace context to store with the event; a failing hook costs the trace, never the send. */
  private traceOfSend(tracing: Tracing, destination: string, eventId: string): string | undefined {
    let trace: string | undefined;
    try {
      trace = tracing.sent(destination, eventId);
    } catch (error) {
      this.logger.error({ destination, eventId, error }, 'tracing failed at send');
      return undefined;
    }
    return typeof trace === 'string' && trace.length > 0 && trace.length <= maxTraceLength ? trace : undefined;
  }

  private overflowed(id: string, name: string, message: string): Receipt {
    if (this.overflow === 'reject') throw new EgressCapacityError(message);
    this.statistics.dropped(name, 1);
    this.events.emit('dropped', { destination: name, count: 1, reason: 'capacity', message });
    return droppedReceipt(id, name, message);
  }

  async waitForOutcome(id: string, committed: Promise<void>): Promise<DeliveryOutcome> {
    await committed;
    return new Promise<DeliveryOutcome>((resolve, reject) => {
      let waiters = this.outcomeWaiters.get(id);
      if (!waiters) this.outcomeWaiters.set(id, (waiters = new Set()));
      const waiter = (outcome: DeliveryOutcome) => resolve(outcome);
      waiters.add(waiter);
      // The outcome may already be known (delivered before anyone asked): look it up once, asking
      // again with backoff while the store cannot be reached.
      const lookUp = (failures: number): void => {
        this.lookUpOutcome(id).then(
          (outcome) => {
            if (!outcome) return;
            this.outcomeWaiters.get(id)?.delete(waiter);
            if (this.outcomeWaiters.get(id)?.size === 0) this.outcomeWaiters.delete(id);
            resolve(outcome);
          },
          (error: unknown) => {
            if (!EgressStoreUnavailableError.isInstance(error) || this.state !== 'open') return reject(error);
            setTimeout(() => lookUp(failures + 1), storeBackoff(failures));
          },
        );
      };
      lookUp(1);
    });
  }

  private async lookUpOutcome(id: string): Promise<DeliveryOutcome | undefined> {
    const state = await this.store.eventState(id);
    if (state === 'pending') return undefined;
    if (state === 'gone') return { status: 'delivered' };
    const [letter] = await this.store.listDead({ ids: [id], limit: 1 });
    if (!letter) return { status: 'delivered' };
    // A record an older version stored unredacted passes the redaction step on its way out too.
    const destination = this.registrations.get(letter.event.destination)?.destination;
    const redactor = destination ? deliveryRedactor(destination, [letter.event.payload]) : this.logRedactor();
    return { status: 'dead', error: { ...letter.error, message: redactor.redact(letter.error.message) } };
  }

  settled(outcomes: readonly EventOutcome[]): void {
    if (this.outcomeWaiters.size > 0) {
      for (const outcome of outcomes) {
        const waiters = this.outcomeWaiters.get(outcome.eventId);
        if (!waiters) continue;
        this.outcomeWaiters.delete(outcome.eventId);
        const result: DeliveryOutcome = outcome.status === 'dead' ? { status: 'dead', error: outcome.error } : { status: 'delivered' };
        for (const waiter of waiters) waiter(result);
      }
    }
    // Waiters (flush, close) look at the store again when woken; settlements landing in the same
    // turn of the event loop wake them once, not once each.
    if (this.settleSignal && !this.settleWakeScheduled) {
      this.settleWakeScheduled = true;
      setImmediate(() => {
        this.settleWakeScheduled = false;
        const current = this.settleSignal;
        this.settleSignal = undefined;
        current?.resolve();
      });
    }
  }

  awaitsOutcomes(): boolean {
    return this.outcomeWaiters.size > 0;
  }

  /** Resolves at the next settlement in this process, or at the next tick of a waiter's `wakeEvery`. */
  private nextSettlement(): Promise<void> {
    this.settleSignal ??= signal();
    return this.settleSignal.promise;
  }

  /**
   * Wakes whoever waits for the next settlement at least every `milliseconds`, until the returned
   * function is called: for work other processes do and for retries waiting out their delay. One
   * timer for the whole wait rather than one per settlement keeps a flush cheap while thousands of
   * single-event deliveries land.
   */
  private wakeEvery(milliseconds: number, deadline = Number.POSITIVE_INFINITY): () => void {
    const wake = () => {
      const current = this.settleSignal;
      this.settleSignal = undefined;
      current?.resolve();
    };
    const ticker = setInterval(wake, milliseconds);
    // And once at the deadline, which need not fall on a tick.
    const last = Number.isFinite(deadline) ? setTimeout(wake, Math.max(0, deadline - Date.now())) : undefined;
    return () => {
      clearInterval(ticker);
      clearTimeout(last);
    };
  }

  // ---- units of work --------------------------------------------------------------------------

  async run<T>(fn: (send: Record<string, SendFunction>) => Promise<T> | T, options: RunOptions = {}): Promise<T> {
    if (this.state !== 'open') throw new EgressClosedError();
    const onError = oneOf(options.onError, ['discard', 'deliver'], 'run options.onError') ?? 'discard';
    const { transaction } = options;
    if (transaction !== undefined) {
      assertTransactionalStore(this.store, 'run options.transaction');
      // The store's tables must exist before anything is written through the application's connection.
      await this.connection.whenOpen();
    }
    const unit: UnitOfWork = { group: commitGroup(false), finished: false, transactional: transaction !== undefined };
    // Through the commit buffer to the store, or through the application's transaction.
    const commit = async (): Promise<void> => {
      if (transaction !== undefined) return writeWithinTransaction(this.transactionalHost(), transaction, unit.group);
      this.commits.submit(unit.group);
      return unit.group.done;
    };
    let result: T;
    this.openUnits += 1;
    try {
      result = await this.units.run(unit, fn, this.send);
    } catch (error) {
      this.unitEnded(unit);
      if (onError === 'deliver') {
        // The function's own error is what the caller hears; a refused commit is logged as well.
        await commit().catch((commitError: unknown) => {
          if (transaction !== undefined) this.logger.error({ error: commitError }, "the events of a failed unit of work could not be written through the application's transaction");
        });
      } else {
        this.commits.release(unit.group);
        unit.group.reject(new EgressError('[egress] the unit of work threw; its events were discarded', { cause: error }));
      }
      throw error;
    }
    this.unitEnded(unit);
    // Not through \`commit\`: an async function's own promise and turn, on the path of every unit.
    if (transaction === undefined) {
      this.commits.submit(unit.group);
      await unit.group.done;
    } else {
      await writeWithinTransaction(this.transactionalHost(), transaction, unit.group);
    }
    return result;
  }

  /**
   * The unit's function returned. Once no unit is open, the async context is let go: while it is
   * held, Node.js (before AsyncContextFrame) runs a hook for every promise the process makes, the
   * delivery's included; a context left behind could only name a finished unit, which sends ignore.
   * The next \`run\` takes it up again.
   */
  private unitEnded(unit: UnitOfWork): void {
    unit.finished = true;
    this.openUnits -= 1;
    if (this.openUnits === 0) this.units.disable();
  }

  runSync<T>(fn: (send: Record<string, SendFunction>) => T, options: RunSyncOptions): T {
    if (this.state !== 'open') throw new EgressClosedError();
    if (typeof options !== 'object' || options === null || options.transaction === undefined) {
      throw new EgressConfigurationError("expected { transaction }: the application's open transaction", 'runSync options.transaction');
    }
    assertTransactionalStore(this.store, 'runSync options.transaction');
    if (!this.connection.isOpen) throw new EgressStoreError(this.store.kind, 'the store is not open yet: await egress.ready() before runSync');
    const unit: UnitOfWork = { group: commitGroup(false), finished: false, transactional: true };
    let result: T;
    this.openUnits += 1;
    try {
      result = this.units.run(unit, fn, this.send);
    } catch (error) {
      this.commits.release(unit.group);
      unit.group.reject(new EgressError('[egress] the unit of work threw; its events were discarded', { cause: error }));
      throw error;
    } finally {
      this.unitEnded(unit);
    }
    if (result instanceof Promise) {
      this.commits.release(unit.group);
      result.catch(() => {});
      const error = new EgressConfigurationError('expected a synchronous function: the transaction it runs in ends when it returns; use run() for asynchronous work', 'runSync fn');
      unit.group.reject(error);
      throw error;
    }
    const pending = writeWithinTransaction(this.transactionalHost(), options.transaction, unit.group);
    if (pending !== undefined) {
      pending.catch(() => {});
      throw new EgressConfigurationError(`the ${this.store.kind} store writes asynchronously; use run(fn, { transaction })`, 'runSync options.transaction');
    }
    return result;
  }

  private transactionalHost(): TransactionalUnitHost {
    return { store: this.store, release: (group) => this.commits.release(group), ended: (events) => this.wakeFor(events) };
  }

  // ---- delivery control -----------------------------------------------------------------------

  private wakeFor(events: readonly QueuedEvent[]): void {
    let last: string | undefined;
    for (const event of events) {
      if (event.destination === last) continue;
      last = event.destination;
      this.registrations.get(event.destination)?.lane?.wake();
    }
  }

  private wake(destination?: string): void {
    for (const registration of this.registrations.values()) {
      if (destination === undefined || registration.destination.name === destination) registration.lane?.wake();
    }
  }

  async flush(options: FlushOptions = {}): Promise<void> {
    const timeout = options.timeout === undefined ? undefined : duration(options.timeout, 'flush options.timeout');
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeout;
    const giveUp = () => new EgressTimeoutError(`flush gave up after ${timeout} ms; undelivered events stay queued`);
    if (!(await beforeDeadline(this.started, deadline))) throw giveUp();
    if (!(await beforeDeadline(this.commits.drained(), deadline))) throw giveUp();
    let mark = await this.store.watermark();
    this.forcingCount += 1;
    this.wake();
    // Settlements in this process wake us at once; the timer covers other workers and retry waits.
    const stopWaking = this.wakeEvery(250, deadline);
    try {
      for (let routed = this.deadLetterRouter.routed; ; routed = this.deadLetterRouter.routed, mark = await this.store.watermark()) {
        while (await this.store.pendingAtOrBelow(mark)) {
          if (Date.now() >= deadline) throw giveUp();
          await this.nextSettlement();
        }
        // A dead letter routed meanwhile belongs to what was enqueued: its record is waited for too.
        if (this.deadLetterRouter.routed === routed) break;
      }
    } finally {
      stopWaking();
      this.forcingCount -= 1;
    }
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.shutdown(duration(options.timeout ?? 10_000, 'close options.timeout'));
    return this.closing;
  }

  private async shutdown(timeout: number): Promise<void> {
    this.state = 'closing';
    this.alerts?.stop();
    const deadline = Date.now() + timeout;
    clearInterval(this.poller);
    // What waits for the store gets until the deadline; a memory buffer does not outlive the process.
    if (!(await beforeDeadline(this.commits.drained(), deadline))) {
      const waiting = this.commits.buffered;
      this.commits.stop(
        new EgressTimeoutError(
          `close gave up after ${timeout} ms with ${waiting} accepted event${waiting === 1 ? '' : 's'} still waiting for the ${this.store.kind} store; the commit buffer lives in memory and they are lost`,
        ),
      );
    }
    this.connection.stop(new EgressClosedError('[egress] closed before the store could be opened'));
    try {
      if (!(await beforeDeadline(this.started, Math.max(deadline, Date.now() + 100)))) this.startAbandoned = true;
    } catch {
      // Nothing was started, so there is nothing to drain; still stop what can be stopped below.
    }
    const lanes = [...this.registrations.values()].flatMap(({ lane }) => (lane ? [lane] : []));
    this.forcingCount += 1;
    this.wake();
    // Open batches go out now; retries scheduled for later stay in the store.
    const stopWaking = this.wakeEvery(20, deadline);
    try {
      while (Date.now() < deadline && !lanes.every((lane) => lane.idle)) await this.nextSettlement();
    } finally {
      stopWaking();
    }
    await Promise.all(lanes.map((lane) => lane.stop(true)));
    const abandonWait = Date.now() + 1000;
    while (Date.now() < abandonWait && !lanes.every((lane) => lane.idle)) await sleep(10);
    this.unsubscribeStore?.();
    for (const { destination } of this.registrations.values()) {
      try {
        await destination.stop?.();
      } catch (error) {
        this.logger.error({ destination: destination.name, error }, 'destination failed to stop');
      }
    }
    if (this.connection.isOpen) {
      await this.store.close();
    } else if (this.connection.opening) {
      // An open still in progress at the deadline finishes on its own; the store closes after it.
      this.connection.opened.then(() => this.store.close()).catch(() => {});
    } else {
      // Never opened: close what a failed open may have left behind.
      await this.store.close().catch(() => {});
    }
  }

  // ---- inspection -----------------------------------------------------------------------------

  async stats(): Promise<DestinationStats[]> {
    await this.connection.whenOpen();
    const buffered = this.commits.bufferedByDestination();
    const now = Date.now();
    const rows = await this.store.stats(now);
    const states = new Map((await this.partitionAdmin.list()).map((entry) => [`${entry.destination}\n${entry.partition}`, entry.state]));
    return [...this.registrations].map(([name, { lane }]) => {
      const totals = this.statistics.destination(name);
      const latencies = this.statistics.partitions(name);
      const partitions = new Map<string, PartitionStats>();
      for (const row of rows) {
        if (row.destination !== name) continue;
        partitions.set(row.partition, {
          partition: row.partition,
          waiting: row.waiting,
          inFlight: row.inFlight,
          delivered: row.delivered,
          failed: row.failed,
          dead: row.dead,
          oldestAge: row.oldestSentAt === undefined ? undefined : now - row.oldestSentAt,
          latency: latencies.get(row.partition),
          ...(lane?.adaptive ? { concurrencyLimit: lane.adaptive.limit(row.partition) } : {}),
          ...(states.has(`${name}\n${row.partition}`) ? { state: states.get(`${name}\n${row.partition}`) } : {}),
        });
      }
      const list = [...partitions.values()];
      const ages = list.flatMap((entry) => (entry.oldestAge === undefined ? [] : [entry.oldestAge]));
      return {
        destination: name,
        waiting: sum(list, 'waiting'),
        inFlight: sum(list, 'inFlight'),
        delivered: sum(list, 'delivered'),
        failed: sum(list, 'failed'),
        dead: sum(list, 'dead'),
        oldestAge: ages.length > 0 ? Math.max(...ages) : undefined,
        dropped: totals.dropped,
        buffered: buffered.get(name) ?? 0,
        lost: totals.lost,
        latency: totals.latency,
        concurrencyLimit: lane?.concurrencyLimit,
        partitions: list,
      };
    });
  }

  async health(): Promise<Record<string, HealthReport>> {
    const entries = await Promise.all(
      [...this.registrations.values()].map(async ({ destination }): Promise<[string, HealthReport]> => {
        if (!destination.health) return [destination.name, { ok: true }];
        try {
          const report = await destination.health();
          return [destination.name, report.message === undefined ? report : { ...report, message: destinationRedactor(destination).redact(report.message) }];
        } catch (error) {
          return [destination.name, { ok: false, message: destinationRedactor(destination).redact(describeCause(error)) }];
        }
      }),
    );
    return Object.fromEntries(entries);
  }

  private async listDead(query: { destination?: string; limit?: number; after?: string } = {}): Promise<DeadLetter[]> {
    await this.connection.whenOpen();
    const letters = await this.store.listDead(query);
    return letters.map(({ event, error, deadAt }) => {
      const destination = this.registrations.get(event.destination)?.destination;
      // Letters stored before redaction existed, or by an older version, pass through it here too.
      const redactor = destination ? deliveryRedactor(destination, [event.payload]) : this.logRedactor();
      return {
        id: event.id,
        destination: event.destination,
        partition: event.partition,
        payload: destination ? redactedPayload(destination, event.payload, redactor) : redactStrings(decodePayload(event.payload), redactor),
        sentAt: event.sentAt,
        attempts: event.attempts,
        error: { ...error, message: redactor.redact(error.message) },
        deadAt,
      };
    });
  }

  async partitions(query?: { destination?: string }): Promise<PartitionState[]> {
    await this.connection.whenOpen();
    return this.partitionAdmin.list(query);
  }

  async enable(destination: string, partition?: string): Promise<number> {
    await this.connection.whenOpen();
    const enabled = await this.partitionAdmin.enable(destination, partition);
    this.wake(destination);
    return enabled;
  }

  async disable(destination: string, partition: string, reason?: string): Promise<boolean> {
    await this.connection.whenOpen();
    return this.partitionAdmin.disable(destination, partition, reason);
  }

  private checkDestinationName(name: string, at: string): void {
    if (!this.registrations.has(name)) {
      throw new EgressConfigurationError(`no destination is named ${JSON.stringify(name)} (registered: ${[...this.registrations.keys()].join(', ')})`, at);
    }
  }

  private async retryDead(ids: readonly string[] | undefined, query: { destination?: string } = {}): Promise<number> {
    await this.connection.whenOpen();
    const count = await this.store.retryDead(ids, { destination: query.destination, now: Date.now() });
    this.wake(query.destination);
    return count;
  }
}

function signal(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((onResolve) => (resolve = onResolve));
  return { promise, resolve };
}

/** Whether `promise` settled before `deadline`; its rejection is passed on. */
async function beforeDeadline(promise: Promise<unknown>, deadline: number): Promise<boolean> {
  if (!Number.isFinite(deadline)) {
    await promise;
    return true;
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([promise.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

function sum<K extends string>(rows: readonly Record<K, number>[], key: K): number {
  let total = 0;
  for (const row of rows) total += row[key];
  return total;
}

function tracingHooks(value: unknown): Tracing | undefined {
  if (value === undefined) return undefined;
  const hooks = value as Partial<Tracing> | null;
  if (typeof hooks !== 'object' || hooks === null || typeof hooks.sent !== 'function' || typeof hooks.delivering !== 'function') {
    throw new EgressConfigurationError('expected an object with sent() and delivering() functions, e.g. openTelemetryTracing() from @egress/opentelemetry', 'tracing');
  }
  return hooks as Tracing;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], path: string): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new EgressConfigurationError(`expected one of ${allowed.map((entry) => `'${entry}'`).join(', ')}, got ${JSON.stringify(value)}`, path);
}

function duration(value: unknown, path: string): number {
  const parsed = parseDuration(value);
  if (typeof parsed !== 'number') throw new EgressConfigurationError(parsed.error, path);
  return parsed;
}
