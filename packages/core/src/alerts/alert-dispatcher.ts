import type { EventHub } from '../egress-events.js';
import type { Logger } from '../logger.js';
import type { StoreStats } from '../store.js';
import { alertInput } from './alert-input.js';
import type { Alert, ResolvedAlertRule } from './alert-rule.js';

/** What the alert dispatcher needs from the engine. */
export interface AlertHost {
  readonly events: EventHub;
  readonly logger: Logger;
  /** The redaction step for every text an alert carries. */
  redact(text: string): string;
  /** Sends an input through a registered destination, outside any unit of work. */
  send(destination: string, input: unknown): void;
  /** The store's counts, for `oldestWaiting` rules. */
  stats(): Promise<readonly StoreStats[]>;
}

/** Occurrences of one rule for one destination (or partition) within one `every` window. */
interface Window {
  readonly rule: ResolvedAlertRule;
  readonly destination: string;
  partitions: Set<string>;
  count: number;
  reason: string | undefined;
  firstAt: number;
  lastAt: number;
  timer: NodeJS.Timeout;
}

/**
 * Turns events into alerts under the rules. The first occurrence in a group is sent at once; what
 * follows within `every` is counted and sent as one alert when the window ends, so an outage gives
 * one alert and then at most one per window, not one per failed event. An alert about the
 * destination the rule sends through is never sent through it: that could feed itself.
 */
export class AlertDispatcher {
  private readonly windows = new Map<string, Window>();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly pollers: NodeJS.Timeout[] = [];
  private readonly loopsReported = new Set<number>();

  constructor(
    private readonly host: AlertHost,
    private readonly rules: readonly ResolvedAlertRule[],
  ) {}

  start(): void {
    const { events } = this.host;
    const rulesFor = (kind: Alert['kind']) => this.rules.filter((rule) => rule.kind === kind);
    const dead = rulesFor('dead');
    if (dead.length > 0) {
      this.unsubscribe.push(events.on('dead', (event) => this.occurred(dead, event.destination, event.partition, event.error.message, event.eventIds.length)));
    }
    const paused = rulesFor('paused');
    if (paused.length > 0) this.unsubscribe.push(events.on('paused', (event) => this.occurred(paused, event.destination, event.partition, event.reason, 1)));
    const disabled = rulesFor('disabled');
    if (disabled.length > 0) this.unsubscribe.push(events.on('disabled', (event) => this.occurred(disabled, event.destination, event.partition, event.reason, 1)));
    for (const rule of rulesFor('oldestWaiting')) {
      const threshold = rule.oldestWaiting!;
      // Often enough to notice the age soon after it passes, rarely enough to cost nothing.
      const interval = Math.min(Math.max(threshold / 4, 1000), 60_000);
      const poller = setInterval(() => void this.lookAtAges(rule, threshold), interval);
      poller.unref?.();
      this.pollers.push(poller);
    }
  }

  /** Stops watching; occurrences counted and not yet sent are logged instead. */
  stop(): void {
    for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
    for (const poller of this.pollers.splice(0)) clearInterval(poller);
    for (const window of this.windows.values()) {
      clearTimeout(window.timer);
      if (window.count > 0) this.host.logger.warn({ destination: window.destination, count: window.count }, `closing with an unsent "${window.rule.kind}" alert: ${this.summary(window.rule.kind, window.destination, window.partitions, window.count, window.rule.oldestWaiting)}`);
    }
    this.windows.clear();
  }

  private async lookAtAges(rule: ResolvedAlertRule, threshold: number): Promise<void> {
    let rows: readonly StoreStats[];
    try {
      rows = await this.host.stats();
    } catch {
      // The store is unreachable: the store event and the logs say so; the ages are looked at again next time.
      return;
    }
    const now = Date.now();
    for (const row of rows) {
      if (row.oldestSentAt === undefined || now - row.oldestSentAt < threshold) continue;
      this.occurred([rule], row.destination, row.partition, `the oldest waiting event was sent ${Math.round((now - row.oldestSentAt) / 1000)} s ago`, 1);
    }
  }

  private occurred(rules: readonly ResolvedAlertRule[], destination: string, partition: string, reason: string, count: number): void {
    const now = Date.now();
    for (const rule of rules) {
      if (rule.destinations && !rule.destinations.has(destination)) continue;
      if (typeof rule.send !== 'function' && rule.send.destination === destination) {
        if (!this.loopsReported.has(rule.index)) {
          this.loopsReported.add(rule.index);
          this.host.logger.warn({ destination }, `alerts[${rule.index}] is about ${destination}, which it sends through: not sent, so that alerts cannot feed themselves`);
        }
        continue;
      }
      const key = rule.group ? `${rule.index}\n${destination}` : `${rule.index}\n${destination}\n${partition}`;
      const window = this.windows.get(key);
      if (window) {
        window.count += count;
        window.partitions.add(partition);
        window.reason = reason;
        window.lastAt = now;
        continue;
      }
      this.dispatch(rule, { destination, partitions: new Set([partition]), count, reason, firstAt: now, lastAt: now });
      this.windows.set(key, { rule, destination, partitions: new Set(), count: 0, reason: undefined, firstAt: now, lastAt: now, timer: this.windowEnd(key, rule.every) });
    }
  }

  /** At the end of a window, what it counted goes out as one alert and a new window starts; an empty window just ends. */
  private windowEnd(key: string, every: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const window = this.windows.get(key);
      if (!window) return;
      if (window.count === 0) {
        this.windows.delete(key);
        return;
      }
      this.dispatch(window.rule, window);
      window.count = 0;
      window.partitions = new Set();
      window.timer = this.windowEnd(key, every);
    }, every);
    timer.unref?.();
    return timer;
  }

  private dispatch(rule: ResolvedAlertRule, what: { destination: string; partitions: ReadonlySet<string>; count: number; reason: string | undefined; firstAt: number; lastAt: number }): void {
    const { redact } = this.host;
    const partitions = [...what.partitions].map(redact);
    const alert: Alert = {
      kind: rule.kind,
      destination: what.destination,
      partitions,
      count: what.count,
      summary: redact(this.summary(rule.kind, what.destination, what.partitions, what.count, rule.oldestWaiting)),
      reason: what.reason === undefined ? undefined : redact(what.reason),
      firstAt: what.firstAt,
      lastAt: what.lastAt,
    };
    const failed = (error: unknown) => this.host.logger.error({ destination: what.destination, error }, `alerts[${rule.index}] could not send its alert`);
    try {
      if (typeof rule.send === 'function') Promise.resolve(rule.send(alert)).catch(failed);
      else this.host.send(rule.send.destination, alertInput(rule.send.input, alert));
    } catch (error) {
      failed(error);
    }
  }

  private summary(kind: Alert['kind'], destination: string, partitions: ReadonlySet<string>, count: number, age: number | undefined): string {
    const [only] = partitions;
    // A destination without partitioning has one partition, named by the empty string.
    const where = partitions.size > 1 ? `${destination} (${partitions.size} partitions)` : only ? `${destination} (partition ${only})` : destination;
    switch (kind) {
      case 'dead':
        return `${count} event${count === 1 ? '' : 's'} of ${where} dead-lettered`;
      case 'paused':
        return `${where} paused after failed deliveries${count > 1 ? ` (${count} times)` : ''}`;
      case 'disabled':
        return `${where} disabled after failing${count > 1 ? ` (${count} times)` : ''}; enable it with egress enable ${destination}`;
      case 'oldestWaiting':
        return `an event waiting for ${where} has waited over ${Math.round(age! / 1000)} s`;
    }
  }
}
