import { z } from 'zod';
import { addressesProblem, isHeaderSafe, toMailboxes, uniqueMailboxes, type EmailAddresses, type Mailbox } from './email-address.js';
import type { ResolvedEmailOptions } from './email-options.js';

/** One file attached to a message. */
export interface EmailAttachment {
  /** The name the recipient sees, e.g. `report.csv`. */
  filename: string;
  /** The file: text (sent as UTF-8) or bytes. */
  content: string | Uint8Array;
  /** MIME type, e.g. `text/csv`; guessed from the file name when not given. */
  contentType?: string;
}

/** What `$send.email(...)` accepts. Every field is optional, as in Pipedream. */
export interface EmailInput {
  /** Subject line (one line, at most 998 characters). */
  subject?: string;
  /** Plain-text body. */
  text?: string;
  /** HTML body; clients that show HTML prefer it to `text`. */
  html?: string;
  /** Also send to the adapter's `collaborators`. Default false. */
  include_collaborators?: boolean;
  /** Recipients instead of the adapter's default `to` (the owner). */
  to?: EmailAddresses;
  /** Copy recipients. */
  cc?: EmailAddresses;
  /** Blind copy recipients: in the envelope only, never in a header. */
  bcc?: EmailAddresses;
  /** Where replies go. */
  replyTo?: EmailAddresses;
  /** Files to attach; their total size is bounded by the adapter's `maxAttachmentSize`. */
  attachments?: readonly EmailAttachment[];
}

/** The queued form of one `$send.email` call: recipients resolved against the adapter's options. */
export interface EmailPayload {
  subject?: string;
  text?: string;
  html?: string;
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
  replyTo: Mailbox[];
  attachments: EmailAttachment[];
}

/** RFC 5322 §2.1.1: a header line holds at most 998 characters. */
const maxSubjectLength = 998;
const maxFilenameLength = 255;
const maxAttachments = 100;
const contentTypePattern = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(?:\s*;\s*[A-Za-z0-9!#$&^_.+-]+=(?:[A-Za-z0-9!#$&^_.+-]+|"[^"\u0000-\u001f\u007f]*"))*$/;

const keyHints: Record<string, string> = {
  body: 'use "text" for a plain-text body or "html" for an HTML body',
  message: 'use "text" for a plain-text body or "html" for an HTML body',
  from: 'the sender is set once, on the adapter: email({ from })',
  includeCollaborators: 'the field is spelled "include_collaborators"',
  reply_to: 'the field is spelled "replyTo"',
  attachment: 'the field is spelled "attachments" and takes a list',
};

function unknownKeysMessage(keys: readonly PropertyKey[]): string {
  return keys
    .map((key) => {
      const hint = keyHints[String(key)];
      return hint ? `unknown field "${String(key)}": ${hint}` : `unknown field "${String(key)}"`;
    })
    .join('; ');
}

const headerLine = (what: string, maxLength: number) =>
  z
    .string()
    .refine(isHeaderSafe, { message: `${what} must not contain line breaks or control characters` })
    .refine((value) => value.length <= maxLength, { message: `${what} must be at most ${maxLength} characters` });

const addresses = z.custom<EmailAddresses>(() => true).superRefine((value, context) => {
  const problem = addressesProblem(value);
  if (problem) context.addIssue({ code: 'custom', message: problem.message, path: problem.at });
});

const attachment = z.strictObject(
  {
    filename: headerLine('a file name', maxFilenameLength).refine((value) => value.length > 0, { message: 'a file name must not be empty' }),
    content: z.union([z.string(), z.instanceof(Uint8Array)], { error: 'expected text or bytes (Uint8Array or Buffer)' }),
    contentType: z.string().regex(contentTypePattern, { message: 'expected a MIME type such as "text/csv" or "application/pdf"' }).optional(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.map((key) => `"${key}"`).join(', ')} (expected filename, content, contentType)` : undefined) },
);

/** Bytes an attachment occupies before transfer encoding. */
export function attachmentBytes(value: EmailAttachment): number {
  return typeof value.content === 'string' ? Buffer.byteLength(value.content, 'utf8') : value.content.byteLength;
}

/** Builds the `$send.email` schema; recipients are resolved against these options when a call is accepted. */
export function createEmailInputSchema(options: ResolvedEmailOptions) {
  return z
    .strictObject(
      {
        subject: headerLine('the subject', maxSubjectLength).optional(),
        text: z.string().optional(),
        html: z.string().optional(),
        include_collaborators: z.boolean().optional(),
        to: addresses.optional(),
        cc: addresses.optional(),
        bcc: addresses.optional(),
        replyTo: addresses.optional(),
        attachments: z.array(attachment).max(maxAttachments, { message: `at most ${maxAttachments} attachments` }).optional(),
      },
      { error: (issue) => (issue.code === 'unrecognized_keys' ? unknownKeysMessage(issue.keys) : undefined) },
    )
    .transform((input, context): EmailPayload => {
      const total = (input.attachments ?? []).reduce((sum, entry) => sum + attachmentBytes(entry), 0);
      if (total > options.maxAttachmentBytes) {
        context.issues.push({
          code: 'custom',
          input: input.attachments,
          path: ['attachments'],
          message: `attachments add up to ${total} bytes, more than the ${options.maxAttachmentBytes} allowed (adapter option "maxAttachmentSize")`,
        });
        return z.NEVER;
      }
      if (input.include_collaborators && options.collaborators.length === 0) {
        context.issues.push({
          code: 'custom',
          input: input.include_collaborators,
          path: ['include_collaborators'],
          message: 'no collaborators are configured (adapter option "collaborators")',
        });
        return z.NEVER;
      }
      const explicitTo = input.to === undefined ? undefined : toMailboxes(input.to);
      const to = uniqueMailboxes([...(explicitTo ?? options.to), ...(input.include_collaborators ? options.collaborators : [])]);
      const cc = uniqueMailboxes(toMailboxes(input.cc));
      const bcc = uniqueMailboxes(toMailboxes(input.bcc));
      if (to.length + cc.length + bcc.length === 0) {
        context.issues.push({
          code: 'custom',
          input: input.to,
          path: ['to'],
          message: 'no recipient: give "to" (or "cc"/"bcc"), or set the adapter option "to" for the default recipients',
        });
        return z.NEVER;
      }
      const payload: EmailPayload = {
        to,
        cc,
        bcc,
        replyTo: uniqueMailboxes(toMailboxes(input.replyTo)),
        attachments: (input.attachments ?? []).map((entry) => (entry.contentType === undefined ? { filename: entry.filename, content: entry.content } : { ...entry })),
      };
      if (input.subject !== undefined) payload.subject = input.subject;
      if (input.text !== undefined) payload.text = input.text;
      if (input.html !== undefined) payload.html = input.html;
      return payload;
    });
}
