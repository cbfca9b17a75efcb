export { email, type EmailDestination } from './email-destination.js';
export type { EmailAddress, EmailAddresses, Mailbox } from './email-address.js';
export type { EmailAttachment, EmailInput, EmailPayload } from './email-input.js';
export type { DigestOptions, EmailOptions, EmailRateLimit } from './email-options.js';
