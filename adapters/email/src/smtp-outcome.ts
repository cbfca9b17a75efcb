import { PermanentError, RetryableError } from '@egress/core';

/** The fields nodemailer attaches to the errors it raises. */
interface SmtpFailure {
  message?: string;
  code?: string;
  originalCode?: string;
  responseCode?: number;
  response?: string;
  permanent?: boolean;
  command?: string;
  recipient?: string;
  rejectedErrors?: SmtpFailure[];
}

/**
 * Failures of the configuration or the message itself, with no server reply: the same send would
 * fail the same way (EAUTH without a reply means the credentials given are incomplete).
 */
const configurationCodes = new Set(['ECONFIG', 'EAUTH', 'ENOAUTH', 'EFILEACCESS', 'EURLACCESS', 'EMAXRECIPIENTS', 'EREQUIRETLS']);

/**
 * Turns a failed send into an outcome. A 5xx reply is the server's final answer, so the event is
 * dead-lettered with the reply; a 4xx reply (greylisting, a full mailbox, throttling) and any
 * failure to talk to the server at all (refused, timed out, reset) may pass later, so it is retried.
 * 503 is the exception nodemailer marks: a bad command sequence says the session went wrong, not
 * that the message was refused.
 *
 * Messages carry the server's reply and the error code only: never the transport options, where
 * the credentials are.
 */
export function classifySmtpFailure(error: unknown, aborted: boolean): RetryableError | PermanentError {
  const failure = (typeof error === 'object' && error !== null ? error : {}) as SmtpFailure;
  const reply = failure.response ? oneLine(failure.response) : undefined;
  const cause = safeCause(failure);
  const refusals = failure.rejectedErrors?.filter((refusal) => typeof refusal.responseCode === 'number') ?? [];
  if (refusals.length > 1) {
    // Every recipient was refused, each with its own reply: one that may pass later is worth a retry.
    const permanent = refusals.every((refusal) => refusal.permanent ?? refusal.responseCode! >= 500);
    const replies = refusals.map((refusal) => `${refusal.recipient ?? 'a recipient'}: ${oneLine(refusal.response ?? String(refusal.responseCode))}`).join('; ');
    const message = `[email] SMTP server refused every recipient: ${replies}`;
    return permanent ? new PermanentError(message, { cause }) : new RetryableError(message, { cause });
  }
  if (typeof failure.responseCode === 'number') {
    const permanent = failure.permanent ?? failure.responseCode >= 500;
    const during = failure.command ? ` to ${commandVerb(failure.command)}` : '';
    const message = `[email] SMTP server replied${during}: ${reply ?? failure.responseCode}`;
    return permanent ? new PermanentError(message, { cause }) : new RetryableError(message, { cause });
  }
  if (aborted || failure.code === 'EABORT') {
    return new RetryableError('[email] sending was aborted (delivery timeout or shutdown); the server may still have accepted the message', { cause });
  }
  const code = failure.originalCode ?? failure.code;
  const detail = failure.message ? oneLine(failure.message) : 'unknown error';
  if (failure.code && configurationCodes.has(failure.code)) {
    return new PermanentError(`[email] the message cannot be sent as configured (${failure.code}): ${detail}`, { cause });
  }
  return new RetryableError(`[email] could not send through the SMTP server${code ? ` (${code})` : ''}: ${detail}`, { cause });
}

/** A copy of the error holding only what is safe to keep: no socket, no options, no credentials. */
function safeCause(failure: SmtpFailure): Error {
  const copy = new Error(failure.message ? oneLine(failure.message) : 'SMTP failure') as Error & SmtpFailure;
  if (failure.code) copy.code = failure.code;
  if (failure.originalCode) copy.originalCode = failure.originalCode;
  if (typeof failure.responseCode === 'number') copy.responseCode = failure.responseCode;
  if (failure.response) copy.response = oneLine(failure.response);
  if (failure.command) copy.command = commandVerb(failure.command);
  return copy;
}

// `AUTH PLAIN <base64>` carries the password: keep the verb and its first argument at most.
function commandVerb(command: string): string {
  const [verb, argument] = command.trim().split(/\s+/);
  if (!verb) return 'a command';
  if (verb.toUpperCase() === 'AUTH') return argument ? `AUTH ${argument}` : 'AUTH';
  return verb.toUpperCase();
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}
