import { EgressConfigurationError } from '../errors.js';
import { parseDuration, type Duration } from '../units.js';

/** What an alert rule watches for. */
export type AlertTrigger = 'dead' | 'paused' | 'disabled' | { oldestWaiting: Duration };

/** One alert, as a rule's `send` receives it. Texts have passed the redaction step. */
export interface Alert {
  /** What happened: events dead-lettered, a partition paused or disabled, or the oldest waiting event past the rule's age. */
  readonly kind: 'dead' | 'paused' | 'disabled' | 'oldestWaiting';
  /** The destination it is about. */
  readonly destination: string;
  /** The partitions it is about, as many as the alert stands for. */
  readonly partitions: readonly string[];
  /** Occurrences the alert stands for: dead letters, pauses, or looks that found the age passed. */
  readonly count: number;
  /** One line for a person. */
  readonly summary: string;
  /** The last error or reason, free of secrets. */
  readonly reason: string | undefined;
  /** First and last occurrence, Unix milliseconds. */
  readonly firstAt: number;
  readonly lastAt: number;
}

/** Sends an alert: through a registered destination, or by calling a function. */
export type AlertTarget =
  | {
      /** The registered destination the alert goes through. */
      readonly destination: string;
      /**
       * The `send` input; strings holding `{{summary}}`, `{{kind}}`, `{{destination}}`,
       * `{{partitions}}`, `{{count}}` or `{{reason}}` get the alert's values, and a string that is
       * exactly `{{alert}}` becomes the whole alert. Without it the alert itself is the input.
       */
      readonly input?: unknown;
    }
  | ((alert: Alert) => void | Promise<void>);

/** A declarative alert rule (`createEgress({ alerts })` and the config file's `alerts`). */
export interface AlertRule {
  /** `'dead'`, `'paused'`, `'disabled'`, or `{ oldestWaiting: '10m' }`. */
  readonly on: AlertTrigger;
  /** Only about these destinations (default: all). */
  readonly destinations?: readonly string[];
  /** Where the alert goes. */
  readonly send: AlertTarget;
  /** At most one alert per this long for one group (default 15 minutes); what happens meanwhile is summed into the next. */
  readonly every?: Duration;
  /** `true` (default): one group per destination; `false`: one per destination and partition. */
  readonly group?: boolean;
}

/** A rule checked, with its durations in milliseconds. */
export interface ResolvedAlertRule {
  readonly index: number;
  readonly kind: Alert['kind'];
  readonly oldestWaiting: number | undefined;
  readonly destinations: ReadonlySet<string> | undefined;
  readonly send: AlertTarget;
  readonly every: number;
  readonly group: boolean;
}

const ruleKeys = ['on', 'destinations', 'send', 'every', 'group'];

/** Checks the rules against the registered destinations; the error names the rule and the key. */
export function resolveAlertRules(rules: unknown, registered: ReadonlySet<string>): ResolvedAlertRule[] {
  if (rules === undefined) return [];
  if (!Array.isArray(rules)) throw new EgressConfigurationError(`expected a list of rules, got ${JSON.stringify(rules)}`, 'alerts');
  return rules.map((rule: unknown, index) => {
    const at = `alerts[${index}]`;
    if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) throw new EgressConfigurationError(`expected an object, got ${JSON.stringify(rule)}`, at);
    for (const key of Object.keys(rule)) {
      if (!ruleKeys.includes(key)) throw new EgressConfigurationError(`unknown key "${key}" (expected one of ${ruleKeys.join(', ')})`, `${at}.${key}`);
    }
    const given = rule as AlertRule;
    let kind: Alert['kind'];
    let oldestWaiting: number | undefined;
    if (given.on === 'dead' || given.on === 'paused' || given.on === 'disabled') kind = given.on;
    else if (typeof given.on === 'object' && given.on !== null && 'oldestWaiting' in given.on) {
      kind = 'oldestWaiting';
      oldestWaiting = duration(given.on.oldestWaiting, `${at}.on.oldestWaiting`);
    } else {
      throw new EgressConfigurationError(`expected 'dead', 'paused', 'disabled' or { oldestWaiting: '10m' }, got ${JSON.stringify(given.on)}`, `${at}.on`);
    }
    const known = (name: unknown, where: string) => {
      if (typeof name !== 'string' || !registered.has(name)) {
        throw new EgressConfigurationError(`no destination is named ${JSON.stringify(name)} (registered: ${[...registered].join(', ')})`, where);
      }
    };
    if (given.destinations !== undefined) {
      if (!Array.isArray(given.destinations)) throw new EgressConfigurationError('expected a list of destination names', `${at}.destinations`);
      given.destinations.forEach((name, position) => known(name, `${at}.destinations[${position}]`));
    }
    const send = given.send;
    if (typeof send !== 'function') {
      if (typeof send !== 'object' || send === null) throw new EgressConfigurationError('expected { destination, input } or a function', `${at}.send`);
      known(send.destination, `${at}.send.destination`);
    }
    if (given.group !== undefined && typeof given.group !== 'boolean') throw new EgressConfigurationError(`expected true or false, got ${JSON.stringify(given.group)}`, `${at}.group`);
    return {
      index,
      kind,
      oldestWaiting,
      destinations: given.destinations ? new Set(given.destinations) : undefined,
      send,
      every: given.every === undefined ? 15 * 60_000 : duration(given.every, `${at}.every`),
      group: given.group ?? true,
    };
  });
}

function duration(value: unknown, at: string): number {
  const parsed = parseDuration(value);
  if (typeof parsed !== 'number') throw new EgressConfigurationError(parsed.error, at);
  return parsed;
}
