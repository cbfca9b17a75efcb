import { domainToASCII } from 'node:url';
import { EgressConfigurationError, parseDuration, parseSize, type Duration, type Size } from '@egress/core';
import type { SMTPPoolOptions } from 'nodemailer';
import { parseConnectionUrl } from 'nodemailer/lib/shared';
import { addressesProblem, formatPath, isHeaderSafe, toMailbox, toMailboxes, uniqueMailboxes, type EmailAddress, type EmailAddresses, type Mailbox } from './email-address.js';

/** Options of `email()`. */
export interface EmailOptions {
  /** The SMTP server: a URL (`smtp://user:password@host:587`, `smtps://...:465`) or nodemailer SMTP options; pooled unless `pool: false`. */
  smtp: string | SMTPPoolOptions;
  /** Sender of every message, e.g. `'alerts@example.com'` or `{ name: 'Alerts', address: 'alerts@example.com' }`. */
  from: EmailAddress;
  /** Default recipients (the owner): used when a call gives no `to`. */
  to?: EmailAddresses;
  /** Added to the recipients of a call that sets `include_collaborators: true`. */
  collaborators?: EmailAddresses;
  /** Most messages sent per interval, e.g. `{ messages: 30, per: '1m' }` (`per` defaults to 1 s); becomes the policy's `rateLimit`. */
  rateLimit?: EmailRateLimit;
  /** Largest total size of one call's attachments, in bytes or as `'5MiB'`; 10 MiB by default. */
  maxAttachmentSize?: Size;
  /** `true` or options: one email per batch listing its events instead of one email per event. */
  digest?: boolean | DigestOptions;
}

export interface EmailRateLimit {
  /** Messages allowed per interval. */
  messages: number;
  /** The interval; one second by default. */
  per?: Duration;
}

export interface DigestOptions {
  /** Subject of each digest; `{count}` is replaced by the number of events. Default `'{count} new messages'` (`'1 new message'` for one). */
  subject?: string;
  /** Most events in one digest; 100 by default (the policy's `batch.maxEvents` overrides it). */
  maxEvents?: number;
  /** Longest an event waits for its digest; `'5m'` by default (the policy's `batch.maxDelay` overrides it). */
  maxDelay?: Duration;
}

/** The options once checked, with defaults applied. */
export interface ResolvedEmailOptions {
  transport: SMTPPoolOptions;
  from: Mailbox;
  /** Domain of the sender, used on the right of each Message-ID. */
  messageIdDomain: string;
  to: Mailbox[];
  collaborators: Mailbox[];
  rateLimit: { messages: number; per: Duration } | undefined;
  maxAttachmentBytes: number;
  /** `subject` is undefined when the default, which speaks of one message or many, applies. */
  digest: { subject: string | undefined; maxEvents: number; maxDelay: Duration } | undefined;
}

const defaultMaxAttachmentBytes = 10 * 1024 * 1024;

const knownOptions = ['smtp', 'from', 'to', 'collaborators', 'rateLimit', 'maxAttachmentSize', 'digest'];

function fail(option: string, message: string): never {
  throw new EgressConfigurationError(message, `[email] option "${option}"`);
}

/** Checks the options of `email()` and fills in defaults; every error names the option. */
export function resolveEmailOptions(options: EmailOptions): ResolvedEmailOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new EgressConfigurationError('expected an options object with at least "smtp" and "from"', '[email] options');
  }
  for (const key of Object.keys(options)) {
    if (!knownOptions.includes(key)) fail(key, `unknown option (expected one of ${knownOptions.join(', ')})`);
  }

  const transport = resolveTransport(options.smtp);

  if (options.from === undefined) fail('from', 'Missing required option: the sender address, e.g. "alerts@example.com"');
  if (Array.isArray(options.from)) fail('from', 'expected one address, got a list');
  const fromProblem = addressesProblem(options.from);
  if (fromProblem) fail(formatPath(['from', ...fromProblem.at]), fromProblem.message);
  const from = toMailbox(options.from);

  for (const option of ['to', 'collaborators'] as const) {
    if (options[option] === undefined) continue;
    const problem = addressesProblem(options[option]);
    if (problem) fail(formatPath([option, ...problem.at]), problem.message);
  }

  return {
    transport,
    from,
    // A Message-ID is ASCII: an international domain goes in its punycode form.
    messageIdDomain: domainToASCII(from.address.slice(from.address.lastIndexOf('@') + 1)) || 'egress.invalid',
    to: uniqueMailboxes(toMailboxes(options.to)),
    collaborators: uniqueMailboxes(toMailboxes(options.collaborators)),
    rateLimit: resolveRateLimit(options.rateLimit),
    maxAttachmentBytes: resolveMaxAttachmentBytes(options.maxAttachmentSize),
    digest: resolveDigest(options.digest),
  };
}

// The URL and the options object hold credentials: no message below repeats them.
function resolveTransport(smtp: unknown): SMTPPoolOptions {
  if (smtp === undefined) fail('smtp', 'Missing required option: an SMTP URL such as "smtp://user:password@mail.example.com:587" or nodemailer SMTP options');
  if (typeof smtp === 'string') {
    let protocol: string;
    try {
      protocol = new URL(smtp).protocol;
    } catch {
      fail('smtp', 'expected a URL such as "smtp://user:password@mail.example.com:587" (the value given does not parse as a URL)');
    }
    if (protocol !== 'smtp:' && protocol !== 'smtps:') fail('smtp', `expected an smtp:// or smtps:// URL, got a ${protocol}// URL`);
    return withSafeDefaults(parseConnectionUrl(smtp) as SMTPPoolOptions);
  }
  if (typeof smtp !== 'object' || smtp === null || Array.isArray(smtp)) {
    fail('smtp', `expected an SMTP URL string or nodemailer SMTP options, got ${Array.isArray(smtp) ? 'a list' : typeof smtp}`);
  }
  const given = smtp as Record<string, unknown>;
  for (const other of ['sendmail', 'SES', 'streamTransport', 'jsonTransport']) {
    if (given[other] !== undefined) fail(`smtp.${other}`, 'only SMTP transports are supported');
  }
  if (given.host !== undefined && (typeof given.host !== 'string' || given.host === '')) fail('smtp.host', 'expected a host name or IP address');
  if (given.port !== undefined && !isPort(given.port)) fail('smtp.port', 'expected a port number between 1 and 65535');
  return withSafeDefaults({ ...(smtp as SMTPPoolOptions) });
}

function isPort(value: unknown): boolean {
  const port = typeof value === 'string' ? Number(value) : value;
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535;
}

function withSafeDefaults(transport: SMTPPoolOptions): SMTPPoolOptions {
  return {
    pool: true,
    ...transport,
    // Message content comes from `$send` callers; it must never make the process read a file or a URL.
    disableFileAccess: true,
    disableUrlAccess: true,
  } as SMTPPoolOptions;
}

function resolveRateLimit(rateLimit: unknown): ResolvedEmailOptions['rateLimit'] {
  if (rateLimit === undefined) return undefined;
  if (typeof rateLimit !== 'object' || rateLimit === null || Array.isArray(rateLimit)) {
    fail('rateLimit', `expected { messages, per? }, got ${JSON.stringify(rateLimit)}`);
  }
  const { messages, per, ...rest } = rateLimit as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) fail(`rateLimit.${unknown}`, 'unknown key (expected messages and per)');
  if (typeof messages !== 'number' || !Number.isInteger(messages) || messages < 1) {
    fail('rateLimit.messages', `expected a positive integer, got ${JSON.stringify(messages)}`);
  }
  if (per === undefined) return { messages, per: 1000 };
  const parsed = parseDuration(per);
  if (typeof parsed !== 'number') fail('rateLimit.per', parsed.error);
  if (parsed < 1) fail('rateLimit.per', 'expected an interval longer than 0');
  return { messages, per: per as Duration };
}

function resolveMaxAttachmentBytes(size: unknown): number {
  if (size === undefined) return defaultMaxAttachmentBytes;
  const parsed = parseSize(size);
  if (typeof parsed !== 'number') fail('maxAttachmentSize', parsed.error);
  return parsed;
}

function resolveDigest(digest: unknown): ResolvedEmailOptions['digest'] {
  if (digest === undefined || digest === false) return undefined;
  const defaults = { subject: undefined, maxEvents: 100, maxDelay: '5m' as Duration };
  if (digest === true) return defaults;
  if (typeof digest !== 'object' || digest === null || Array.isArray(digest)) {
    fail('digest', `expected true or { subject?, maxEvents?, maxDelay? }, got ${JSON.stringify(digest)}`);
  }
  const { subject, maxEvents, maxDelay, ...rest } = digest as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) fail(`digest.${unknown}`, 'unknown key (expected subject, maxEvents and maxDelay)');
  if (subject !== undefined && (typeof subject !== 'string' || !isHeaderSafe(subject))) {
    fail('digest.subject', 'expected a string without line breaks');
  }
  if (maxEvents !== undefined && (typeof maxEvents !== 'number' || !Number.isInteger(maxEvents) || maxEvents < 1)) {
    fail('digest.maxEvents', `expected a positive integer, got ${JSON.stringify(maxEvents)}`);
  }
  if (maxDelay !== undefined) {
    const parsed = parseDuration(maxDelay);
    if (typeof parsed !== 'number') fail('digest.maxDelay', parsed.error);
  }
  return {
    subject: subject as string | undefined,
    maxEvents: (maxEvents as number | undefined) ?? defaults.maxEvents,
    maxDelay: (maxDelay as Duration | undefined) ?? defaults.maxDelay,
  };
}
