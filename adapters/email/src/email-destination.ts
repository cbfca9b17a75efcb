import { setMaxListeners } from 'node:events';
import { createBatchId, defineDestination, type Batch, type BatchEvent, type DeliveryContext, type DeliveryReport, type Destination, type Logger, type PolicyOptions } from '@egress/core';
import { createTransport, type SendMailOptions, type SMTPPoolSentMessageInfo } from 'nodemailer';
import { attachmentBytes, createEmailInputSchema, type EmailInput, type EmailPayload } from './email-input.js';
import { resolveEmailOptions, type EmailOptions, type ResolvedEmailOptions } from './email-options.js';
import { composeDigest, composeMessage, recipientKey } from './message-composition.js';
import { classifySmtpFailure } from './smtp-outcome.js';

type Transport = ReturnType<typeof createTransport>;

/** The email destination: `$send.email({ subject, text, html, to, attachments, ... })`. */
export type EmailDestination = Destination<'email', EmailInput, EmailPayload>;

/**
 * Email through SMTP with nodemailer. One message per event, or with `digest` one message per
 * batch listing its events; connections are pooled and every message carries a Message-ID made
 * from the event (or batch) id, so a retried message is recognisably the same message.
 */
export function email(options: EmailOptions): EmailDestination {
  const resolved = resolveEmailOptions(options);
  let transport: Transport | undefined;
  const openTransport = (): Transport => (transport ??= createTransport(resolved.transport));

  const send = async (message: SendMailOptions, signal: AbortSignal, logger: Logger): Promise<void> => {
    let info: SMTPPoolSentMessageInfo;
    try {
      info = (await openTransport().sendMail({ ...message, signal })) as SMTPPoolSentMessageInfo;
    } catch (error) {
      throw classifySmtpFailure(error, signal.aborted);
    }
    // Some recipients took the message and others did not: sending again would duplicate it for
    // the ones who have it, so the event counts as delivered and the refusal is logged loudly.
    if (info.rejected.length > 0) {
      logger.warn({ destination: 'email', messageId: message.messageId, rejected: info.rejected, accepted: info.accepted }, 'SMTP server refused some recipients of a message it accepted for others');
    }
  };

  return defineDestination({
    name: 'email',
    input: createEmailInputSchema(resolved) as EmailDestination['input'],
    defaults: policyDefaults(resolved),
    ...(resolved.digest ? { partition: recipientKey } : {}),
    measure: measureMessage,
    limits: {
      // Addresses and attachments nest a few levels at most.
      maxDepth: 8,
      // Attachment bytes travel as base64 in the queued JSON; the message text adds the rest.
      maxInputBytes: Math.ceil((resolved.maxAttachmentBytes * 4) / 3) + 16 * 1024 * 1024,
    },
    secrets: () => transportSecrets(resolved.transport),
    async deliver(batch: Batch<EmailPayload>, { signal, logger, traceHeaders }: DeliveryContext): Promise<DeliveryReport | void> {
      const groups = resolved.digest ? groupByRecipients(batch) : batch.events.map((event) => ({ id: event.id, events: [event] }));
      const shared = shareSignal(signal, groups.length);
      let outcomes: PromiseSettledResult<void>[];
      try {
        outcomes = await Promise.allSettled(
          groups.map((group) => {
            const message = resolved.digest ? composeDigest(group.id, group.events, resolved, resolved.digest.subject) : composeMessage(group.events[0]!, resolved);
            // The attempt's trace context rides in the message header, as on an HTTP request, for mail systems that trace.
            if (traceHeaders !== undefined) message.headers = { ...traceHeaders };
            return send(message, shared.signal, logger);
          }),
        );
      } finally {
        shared.release();
      }
      if (groups.length === 1 && outcomes[0]!.status === 'rejected') throw outcomes[0]!.reason;
      const failures = outcomes.flatMap((outcome, index) => (outcome.status === 'rejected' ? groups[index]!.events.map((event) => ({ eventId: event.id, error: outcome.reason as unknown })) : []));
      return failures.length > 0 ? { failures } : undefined;
    },
    start() {
      openTransport();
    },
    async stop() {
      transport?.close();
      transport = undefined;
    },
    async health() {
      try {
        await openTransport().verify();
        return { ok: true };
      } catch (error) {
        return { ok: false, message: classifySmtpFailure(error, false).message };
      }
    },
  });
}

/**
 * Every message of a batch listens to the abort signal; a batch of many messages would pass Node's
 * listener warning threshold on core's signal, so they listen to one signal of ours instead.
 */
function shareSignal(signal: AbortSignal, listeners: number): { signal: AbortSignal; release(): void } {
  if (listeners <= 1) return { signal, release() {} };
  const controller = new AbortController();
  setMaxListeners(listeners + 10, controller.signal);
  const forward = () => controller.abort(signal.reason);
  if (signal.aborted) forward();
  else signal.addEventListener('abort', forward, { once: true });
  return { signal: controller.signal, release: () => signal.removeEventListener('abort', forward) };
}

/**
 * One message per event by default, paced by the rate limit (each event is a message). In digest
 * mode a batch is one message, so the rate limit counts batches and batches wait for company.
 */
function policyDefaults(options: ResolvedEmailOptions): PolicyOptions {
  const defaults: PolicyOptions = {
    // Twice the pool's connections, so a message is already queued in the pool when a connection
    // frees up, while the engine settles the last delivery and claims the next.
    concurrency: (options.transport.maxConnections ?? 5) * 2,
    timeout: '60s',
  };
  if (options.digest) {
    defaults.batch = { maxEvents: options.digest.maxEvents, maxDelay: options.digest.maxDelay, maxBytes: '10MiB' };
  } else {
    defaults.batch = { maxEvents: 1 };
  }
  if (options.rateLimit) {
    defaults.rateLimit = options.digest ? { requests: options.rateLimit.messages, per: options.rateLimit.per } : { events: options.rateLimit.messages, per: options.rateLimit.per };
  }
  return defaults;
}

/**
 * Events of a digest batch that share their recipients. The adapter partitions by recipients, so a
 * batch is normally one group; a user's own `partitionBy` may mix them, and then each group still
 * gets its own message.
 */
function groupByRecipients(batch: Batch<EmailPayload>): { id: string; events: BatchEvent<EmailPayload>[] }[] {
  const groups = new Map<string, BatchEvent<EmailPayload>[]>();
  for (const event of batch.events) {
    const key = recipientKey(event.payload);
    const group = groups.get(key);
    if (group) group.push(event);
    else groups.set(key, [event]);
  }
  if (groups.size === 1) return [{ id: batch.id, events: [...batch.events] }];
  return [...groups.values()].map((events) => ({ id: createBatchId(batch.destination, events.map((event) => event.id)), events }));
}

/** Roughly the bytes on the wire: bodies as written, attachments after base64 (4 bytes for 3). */
function measureMessage(payload: EmailPayload): number {
  const bodies = Buffer.byteLength(payload.subject ?? '') + Buffer.byteLength(payload.text ?? '') + Buffer.byteLength(payload.html ?? '');
  const attachments = payload.attachments.reduce((sum, attachment) => sum + Math.ceil((attachmentBytes(attachment) * 4) / 3) + attachment.filename.length + 200, 0);
  return bodies + attachments + 500;
}

/**
 * The credentials in the transport options, with the forms they take on the wire: `AUTH PLAIN`
 * sends base64 of NUL, user, NUL, password, which a server may echo in a 535 reply.
 */
function transportSecrets(transport: ResolvedEmailOptions['transport']): string[] {
  const auth = (transport as { auth?: Record<string, unknown> }).auth;
  if (typeof auth !== 'object' || auth === null) return [];
  const secrets = ['pass', 'accessToken', 'refreshToken', 'clientSecret', 'privateKey'].flatMap((key) => (typeof auth[key] === 'string' ? [auth[key] as string] : []));
  if (typeof auth.user === 'string' && typeof auth.pass === 'string') {
    secrets.push(Buffer.from(`\u0000${auth.user}\u0000${auth.pass}`).toString('base64'));
  }
  return secrets;
}
