import type { BatchEvent } from '@egress/core';
import type { SendMailOptions } from 'nodemailer';
import type { Mailbox } from './email-address.js';
import type { EmailAttachment, EmailPayload } from './email-input.js';
import type { ResolvedEmailOptions } from './email-options.js';

/**
 * A Message-ID made from the event id (or the digest's batch id), so a message sent again after a
 * retry carries the same id and a receiver can tell it is the same message.
 */
function messageId(id: string, options: ResolvedEmailOptions): string {
  return `<${id}@${options.messageIdDomain}>`;
}

/** The message for one event. */
export function composeMessage(event: BatchEvent<EmailPayload>, options: ResolvedEmailOptions): SendMailOptions {
  const { payload } = event;
  return {
    ...envelopeOf(payload, options),
    messageId: messageId(event.id, options),
    date: new Date(event.sentAt),
    subject: payload.subject ?? '',
    ...(payload.text === undefined ? {} : { text: payload.text }),
    ...(payload.html === undefined ? {} : { html: payload.html }),
    attachments: payload.attachments.map(toNodemailerAttachment),
  };
}

/**
 * One message listing several events that share their recipients: a text part and an HTML part,
 * each giving every event's subject, time and body, and every event's attachments.
 */
export function composeDigest(id: string, events: readonly BatchEvent<EmailPayload>[], options: ResolvedEmailOptions, subjectTemplate: string | undefined): SendMailOptions {
  const first = events[0]!.payload;
  const template = subjectTemplate ?? (events.length === 1 ? '{count} new message' : '{count} new messages');
  const subject = template.replaceAll('{count}', String(events.length));
  const textSections = events.map((event, index) => {
    const heading = `${index + 1}. ${event.payload.subject ?? '(no subject)'}`;
    const body = event.payload.text ?? (event.payload.html === undefined ? '' : htmlToText(bodyOf(event.payload.html)));
    return [heading, `   ${new Date(event.sentAt).toISOString()}`, '', body].join('\n').trimEnd();
  });
  const htmlSections = events.map((event) => {
    const body = event.payload.html !== undefined ? bodyOf(event.payload.html) : (event.payload.text === undefined ? '' : `<pre style="white-space:pre-wrap;font-family:inherit">${escapeHtml(event.payload.text)}</pre>`);
    return [
      '<section style="margin:0 0 24px 0">',
      `<h2 style="font-size:16px;margin:0 0 4px 0">${escapeHtml(event.payload.subject ?? '(no subject)')}</h2>`,
      `<p style="color:#666;font-size:12px;margin:0 0 8px 0">${new Date(event.sentAt).toISOString()}</p>`,
      `<div>${body}</div>`,
      '</section>',
    ].join('\n');
  });
  const sentAt = Math.max(...events.map((event) => event.sentAt));
  return {
    ...envelopeOf(first, options),
    messageId: messageId(id, options),
    date: new Date(sentAt),
    subject,
    text: `${subject}\n\n${textSections.join('\n\n----------------------------------------\n\n')}\n`,
    html: `<!doctype html>\n<html><body>\n<h1 style="font-size:18px">${escapeHtml(subject)}</h1>\n${htmlSections.join('\n<hr>\n')}\n</body></html>\n`,
    attachments: events.flatMap((event) => event.payload.attachments.map(toNodemailerAttachment)),
  };
}

/**
 * Events whose messages would reach the same people: the same To, Cc, Bcc and Reply-To. A digest
 * only ever lists events of one such group, so nobody sees an event that was not meant for them.
 */
export function recipientKey(payload: EmailPayload): string {
  const list = (mailboxes: readonly Mailbox[]) =>
    mailboxes
      .map((mailbox) => mailbox.address.toLowerCase())
      .sort()
      .join(',');
  return `to:${list(payload.to)};cc:${list(payload.cc)};bcc:${list(payload.bcc)};reply-to:${list(payload.replyTo)}`;
}

function envelopeOf(payload: EmailPayload, options: ResolvedEmailOptions): Pick<SendMailOptions, 'from' | 'to' | 'cc' | 'bcc' | 'replyTo'> {
  return {
    from: options.from,
    ...(payload.to.length > 0 ? { to: payload.to.map(toAddress) } : {}),
    ...(payload.cc.length > 0 ? { cc: payload.cc.map(toAddress) } : {}),
    ...(payload.bcc.length > 0 ? { bcc: payload.bcc.map(toAddress) } : {}),
    ...(payload.replyTo.length > 0 ? { replyTo: payload.replyTo.map(toAddress) } : {}),
  };
}

function toAddress(mailbox: Mailbox): { name: string; address: string } {
  return { name: mailbox.name ?? '', address: mailbox.address };
}

function toNodemailerAttachment(attachment: EmailAttachment): NonNullable<SendMailOptions['attachments']>[number] {
  const content = typeof attachment.content === 'string' ? attachment.content : Buffer.from(attachment.content.buffer, attachment.content.byteOffset, attachment.content.byteLength);
  return attachment.contentType === undefined ? { filename: attachment.filename, content } : { filename: attachment.filename, content, contentType: attachment.contentType };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

/** The inside of `<body>` when an event's HTML is a whole document, so documents do not nest. */
function bodyOf(html: string): string {
  const match = /<body[^>]*>([\s\S]*)<\/body>/i.exec(html);
  return match ? match[1]! : html;
}

/** A readable text rendering of an HTML body, for the text part of a digest when an event has no text. */
function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, '')
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<\/(p|div|h[1-6]|li|tr)>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
