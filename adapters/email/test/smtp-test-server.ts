import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

/** One message as the server received it: the SMTP envelope and the parsed message. */
export interface ReceivedMessage {
  /** MAIL FROM. */
  envelopeFrom: string;
  /** Every RCPT TO, Bcc recipients included. */
  envelopeTo: string[];
  /** The message as mailparser reads it. */
  parsed: ParsedMail;
  /** The Message-ID header, angle brackets included. */
  messageId: string;
}

/** A reply the server gives instead of accepting a message. */
export interface Rejection {
  code: number;
  message: string;
}

export interface TestSmtpServer {
  readonly port: number;
  /** `smtp://127.0.0.1:<port>`, or with credentials when the server requires them. */
  readonly url: string;
  /** Every message accepted, in order, duplicates included. */
  readonly received: ReceivedMessage[];
  /** Rejects the next `count` messages at the end of DATA with this reply, then accepts again. */
  rejectNext(count: number, rejection: Rejection): void;
  /** Refuses this recipient at RCPT TO with this reply. */
  refuseRecipient(address: string, rejection: Rejection): void;
  /** How many messages were rejected so far. */
  readonly rejectedCount: number;
  /** Resolves once `count` messages have been accepted in all. */
  waitForMessages(count: number): Promise<ReceivedMessage[]>;
  /** Forgets what was received and any pending rejection. */
  reset(): void;
  close(): Promise<void>;
}

/**
 * A real SMTP server on loopback (smtp-server), in process: plain text (no STARTTLS), optional
 * authentication, and every accepted message parsed with mailparser.
 */
export async function startSmtpServer(options: { credentials?: { user: string; password: string }; echoCredentials?: boolean } = {}): Promise<TestSmtpServer> {
  const received: ReceivedMessage[] = [];
  const waiters: { count: number; resolve: (messages: ReceivedMessage[]) => void }[] = [];
  let pendingRejections: { count: number; rejection: Rejection } | undefined;
  let rejectedCount = 0;
  const refusedRecipients = new Map<string, Rejection>();

  const notify = () => {
    for (const waiter of [...waiters]) {
      if (received.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve([...received]);
      }
    }
  };

  const serverOptions: SMTPServerOptions = {
    secure: false,
    disabledCommands: options.credentials ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authOptional: !options.credentials,
    allowInsecureAuth: true,
    logger: false,
    // Close lingering client connections quickly when a test ends.
    closeTimeout: 500,
    size: 50 * 1024 * 1024,
    onAuth(auth, _session, callback) {
      const expected = options.credentials;
      if (expected && auth.username === expected.user && auth.password === expected.password) return callback(null, { user: auth.username });
      // A careless server that repeats what it was given, in clear and as the AUTH PLAIN blob.
      const echo = options.echoCredentials
        ? ` for ${auth.username} with password ${auth.password ?? ''} (${Buffer.from(`\u0000${auth.username}\u0000${auth.password ?? ''}`).toString('base64')})`
        : '';
      callback(Object.assign(new Error(`Authentication credentials invalid${echo}`), { responseCode: 535 }));
    },
    onRcptTo(address, _session, callback) {
      const refusal = refusedRecipients.get(address.address.toLowerCase());
      if (refusal) return callback(Object.assign(new Error(refusal.message), { responseCode: refusal.code }));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (pendingRejections && pendingRejections.count > 0) {
          pendingRejections.count -= 1;
          rejectedCount += 1;
          const { code, message } = pendingRejections.rejection;
          return callback(Object.assign(new Error(message), { responseCode: code }));
        }
        const raw = Buffer.concat(chunks);
        simpleParser(raw).then(
          (parsed) => {
            received.push({
              envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              envelopeTo: session.envelope.rcptTo.map((recipient) => recipient.address),
              parsed,
              messageId: parsed.messageId ?? '',
            });
            callback();
            notify();
          },
          (error: Error) => callback(error),
        );
      });
    },
  };
  const server = new SMTPServer(serverOptions);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  const credentials = options.credentials ? `${encodeURIComponent(options.credentials.user)}:${encodeURIComponent(options.credentials.password)}@` : '';

  return {
    port,
    url: `smtp://${credentials}127.0.0.1:${port}`,
    received,
    get rejectedCount() {
      return rejectedCount;
    },
    refuseRecipient(address, rejection) {
      refusedRecipients.set(address.toLowerCase(), rejection);
    },
    rejectNext(count, rejection) {
      pendingRejections = { count, rejection };
    },
    waitForMessages(count) {
      return new Promise((resolve) => {
        waiters.push({ count, resolve });
        notify();
      });
    },
    reset() {
      received.length = 0;
      pendingRejections = undefined;
      rejectedCount = 0;
      refusedRecipients.clear();
    },
    close() {
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Messages with distinct Message-IDs: a message sent again after a retry counts once, as a receiver would count it. */
export function uniqueByMessageId(messages: readonly ReceivedMessage[]): ReceivedMessage[] {
  const seen = new Set<string>();
  return messages.filter((message) => {
    if (seen.has(message.messageId)) return false;
    seen.add(message.messageId);
    return true;
  });
}
