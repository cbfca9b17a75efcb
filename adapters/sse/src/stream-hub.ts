import { randomBytes } from 'node:crypto';
import { concatenate, eventFrame, keepaliveFrame } from './wire-format.js';

/** An event as kept in the replay window, its frame encoded once for every subscriber. */
export interface StoredEvent {
  readonly sequence: number;
  readonly channel: string;
  readonly frame: Buffer;
}

/** One connected subscriber, whatever the transport (node:http response or fetch stream). */
export interface Subscriber {
  /** The channels it takes, or undefined for all. */
  readonly channels: ReadonlySet<string> | undefined;
  /** Queues bytes; returns false once the subscriber is gone (closed or cut off as too slow). */
  write(chunk: Uint8Array): boolean;
  /** Ends the stream (the client may reconnect and resume). */
  end(): void;
}

export interface StreamHubOptions {
  /** Events kept for replay and resume. */
  windowEvents: number;
  /** Frame bytes kept for replay and resume. */
  windowBytes: number;
  /** How many delivered event ids are remembered to drop a retried delivery. */
  dedupeEvents: number;
  /** Milliseconds between `:keepalive` comments. */
  keepaliveInterval: number;
  /** Milliseconds events may wait to be written to subscribers together; 0 writes each delivery at once. */
  coalesce: number;
}

/** Where a new subscriber starts. */
export type StartPoint = { kind: 'recent'; count: number } | { kind: 'after'; lastEventId: string };

/** What a subscriber is sent before live events: a reset notice when its id cannot be honoured, then the replay. */
export interface ReplayPlan {
  readonly reset: ResetNotice | undefined;
  readonly events: readonly StoredEvent[];
}

/** Sent as `event: egress-reset` when `Last-Event-ID` lies outside the replay window. */
export interface ResetNotice {
  /** `expired`: the id fell out of the window; `unknown`: the id belongs to another stream (e.g. before a restart) or is ahead of it. */
  readonly reason: 'expired' | 'unknown';
  /** The id the subscriber asked to resume after. */
  readonly lastEventId: string;
  /** Events published after that id and no longer kept (all channels), or null when unknown. */
  readonly missed: number | null;
  /** The id the reset notice carries: the replay that follows starts right after it. */
  readonly resumeAfter: string;
}

/**
 * The in-process stream: assigns each published event the next sequence number, keeps a window of
 * recent events bounded by count and bytes, and fans frames out to subscribers. Publishing and
 * attaching are synchronous, so a subscriber's replay and its live events never overlap or leave a gap.
 */
export class StreamHub {
  /** Distinguishes this stream's ids from those of an earlier process, whose sequence numbers are meaningless here. */
  readonly epoch = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  private sequence = 0;
  private readonly window: StoredEvent[] = [];
  private windowStart = 0;
  private windowBytes = 0;
  private readonly published = new Set<string>();
  private readonly subscribers = new Set<Subscriber>();
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Published but not yet written to subscribers. */
  private pending: StoredEvent[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  /** Subscribers attached while events were pending, with the last sequence their replay already held. */
  private readonly replayedUpTo = new Map<Subscriber, number>();

  constructor(private readonly options: StreamHubOptions) {}

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Publishes events in order; an event id seen before is skipped (a retried delivery). Returns how many were new. */
  publish(events: readonly { eventId: string; channel: string; json: string }[]): number {
    const fresh: StoredEvent[] = [];
    for (const event of events) {
      if (this.published.has(event.eventId)) continue;
      this.remember(event.eventId);
      this.sequence += 1;
      const stored: StoredEvent = { sequence: this.sequence, channel: event.channel, frame: eventFrame(this.idOf(this.sequence), event.channel, event.json) };
      this.retain(stored);
      fresh.push(stored);
    }
    if (fresh.length > 0) {
      for (const event of fresh) this.pending.push(event);
      this.scheduleFlush();
    }
    return fresh.length;
  }

  /**
   * Writes pending events at once when the last write is older than the coalescing interval, else
   * when it has passed: a quiet stream adds no delay, a busy one makes one write per subscriber per
   * interval instead of one per delivery, which is what keeps a large fan-out within a CPU's reach.
   */
  private scheduleFlush(): void {
    if (this.flushTimer !== undefined || this.pending.length === 0) return;
    const wait = this.lastFlushAt + this.options.coalesce - performance.now();
    if (wait <= 0) {
      this.flush();
      return;
    }
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, wait);
  }

  private flush(): void {
    const events = this.pending;
    this.pending = [];
    this.lastFlushAt = performance.now();
    if (events.length > 0 && this.subscribers.size > 0) this.fanOut(events);
    this.replayedUpTo.clear();
  }

  /** Computes a new subscriber's replay and attaches it in the same turn, so nothing is published in between. */
  attach(subscriber: Subscriber, start: StartPoint): ReplayPlan {
    const plan = this.planReplay(subscriber.channels, start);
    this.subscribers.add(subscriber);
    // Pending events are in the window, so the replay may already hold them: they must not be written twice.
    if (this.pending.length > 0) this.replayedUpTo.set(subscriber, this.sequence);
    if (this.keepaliveTimer === undefined) {
      this.keepaliveTimer = setInterval(() => this.keepalive(), this.options.keepaliveInterval);
      this.keepaliveTimer.unref();
    }
    return plan;
  }

  detach(subscriber: Subscriber): void {
    this.subscribers.delete(subscriber);
    if (this.subscribers.size === 0) this.stopKeepalive();
  }

  /** Ends every subscriber's stream; later connections are refused. */
  close(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flush();
    this.closed = true;
    this.stopKeepalive();
    for (const subscriber of [...this.subscribers]) subscriber.end();
    this.subscribers.clear();
  }

  /** Whether a `Last-Event-ID` value has the shape this stream issues (`<epoch>-<sequence>`). */
  static isWellFormedId(id: string): boolean {
    return /^[0-9a-z]{1,32}-\d{1,15}$/.test(id);
  }

  private idOf(sequence: number): string {
    return `${this.epoch}-${sequence}`;
  }

  private planReplay(channels: ReadonlySet<string> | undefined, start: StartPoint): ReplayPlan {
    const matches = (event: StoredEvent) => channels === undefined || channels.has(event.channel);
    const kept = this.window.length - this.windowStart;
    if (start.kind === 'recent') {
      const events: StoredEvent[] = [];
      for (let index = this.window.length - 1; index >= this.windowStart && events.length < start.count; index -= 1) {
        const event = this.window[index]!;
        if (matches(event)) events.push(event);
      }
      return { reset: undefined, events: events.reverse() };
    }
    const firstKept = kept > 0 ? this.window[this.windowStart]!.sequence : this.sequence + 1;
    const separator = start.lastEventId.lastIndexOf('-');
    const epoch = start.lastEventId.slice(0, separator);
    const after = Number(start.lastEventId.slice(separator + 1));
    const everything = () => this.window.slice(this.windowStart).filter(matches);
    if (epoch !== this.epoch || after > this.sequence) {
      return { reset: { reason: 'unknown', lastEventId: start.lastEventId, missed: null, resumeAfter: this.idOf(firstKept - 1) }, events: everything() };
    }
    if (after < firstKept - 1) {
      return { reset: { reason: 'expired', lastEventId: start.lastEventId, missed: firstKept - 1 - after, resumeAfter: this.idOf(firstKept - 1) }, events: everything() };
    }
    const events: StoredEvent[] = [];
    for (let index = this.windowStart + (after - firstKept + 1); index < this.window.length; index += 1) {
      const event = this.window[index]!;
      if (matches(event)) events.push(event);
    }
    return { reset: undefined, events };
  }

  private retain(event: StoredEvent): void {
    this.window.push(event);
    this.windowBytes += event.frame.byteLength;
    while (this.window.length - this.windowStart > this.options.windowEvents || (this.windowBytes > this.options.windowBytes && this.window.length - this.windowStart > 1)) {
      this.windowBytes -= this.window[this.windowStart]!.frame.byteLength;
      this.window[this.windowStart] = undefined as unknown as StoredEvent;
      this.windowStart += 1;
    }
    // Compact now and then rather than shifting the array on every eviction.
    if (this.windowStart > 1024 && this.windowStart * 2 > this.window.length) {
      this.window.splice(0, this.windowStart);
      this.windowStart = 0;
    }
  }

  private remember(eventId: string): void {
    this.published.add(eventId);
    if (this.published.size > this.options.dedupeEvents) {
      // A Set iterates in insertion order: the first entry is the oldest id.
      const oldest = this.published.values().next().value as string;
      this.published.delete(oldest);
    }
  }

  /** Writes each subscriber all of its new events in one chunk; subscribers with the same filter share the bytes. */
  private fanOut(events: readonly StoredEvent[]): void {
    const everything = concatenate(events.map((event) => event.frame));
    const byFilter = new Map<string, Buffer | undefined>();
    const replayed = this.replayedUpTo;
    for (const subscriber of this.subscribers) {
      let chunk: Buffer | undefined;
      const replayedUpTo = replayed.size > 0 ? replayed.get(subscriber) : undefined;
      if (replayedUpTo !== undefined) {
        const unseen = events.filter((event) => event.sequence > replayedUpTo && (subscriber.channels === undefined || subscriber.channels.has(event.channel)));
        chunk = unseen.length > 0 ? concatenate(unseen.map((event) => event.frame)) : undefined;
      } else if (subscriber.channels === undefined) {
        chunk = everything;
      } else {
        const filter = subscriber.channels;
        const key = filterKey(filter);
        if (byFilter.has(key)) {
          chunk = byFilter.get(key);
        } else {
          const selected = events.filter((event) => filter.has(event.channel)).map((event) => event.frame);
          chunk = selected.length > 0 ? concatenate(selected) : undefined;
          byFilter.set(key, chunk);
        }
      }
      if (chunk !== undefined && !subscriber.write(chunk)) this.subscribers.delete(subscriber);
    }
    if (this.subscribers.size === 0) this.stopKeepalive();
  }

  private keepalive(): void {
    for (const subscriber of this.subscribers) {
      if (!subscriber.write(keepaliveFrame)) this.subscribers.delete(subscriber);
    }
    if (this.subscribers.size === 0) this.stopKeepalive();
  }

  private stopKeepalive(): void {
    if (this.keepaliveTimer !== undefined) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
  }
}

const filterKeys = new WeakMap<ReadonlySet<string>, string>();

function filterKey(channels: ReadonlySet<string>): string {
  let key = filterKeys.get(channels);
  if (key === undefined) {
    key = [...channels].sort().join('\n');
    filterKeys.set(channels, key);
  }
  return key;
}
