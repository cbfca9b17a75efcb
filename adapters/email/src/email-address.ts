/**
 * A mailbox: a bare address (`ops@example.com`) or an address with the name people see
 * (`{ name: 'Ops team', address: 'ops@example.com' }`). Display names are passed as a separate
 * field rather than parsed out of `"Name <address>"` strings, so no quoting rule can smuggle a
 * second recipient or a header into the message.
 */
export type EmailAddress = string | { name: string; address: string };

/** A mailbox as it is stored and sent: the address checked, the name optional. */
export interface Mailbox {
  /** The address, e.g. `ops@example.com`. */
  address: string;
  /** The display name, when one was given. */
  name?: string;
}

// A dot-atom local part (RFC 5321 without quoted strings) and a domain of labels; letters, marks
// and digits beyond ASCII are allowed in the domain, which nodemailer converts with punycode, but
// no separator, format or control character (U+2028 and U+2029 end a line in some clients).
const localPart = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*";
const label = '[\\p{L}\\p{M}\\p{N}](?:[\\p{L}\\p{M}\\p{N}-]{0,61}[\\p{L}\\p{M}\\p{N}])?';
const addressPattern = new RegExp(`^${localPart}@${label}(?:\\.${label})*$`, 'u');

/** Longest address SMTP accepts in a forward path (RFC 5321 §4.5.3.1.3). */
const maxAddressLength = 254;
/** Longest local part (RFC 5321 §4.5.3.1.1). */
const maxLocalPartLength = 64;
const maxNameLength = 256;

// CR and LF end a header line; the other C0 controls, DEL, NEL and the Unicode line and paragraph
// separators have no business in a header either.
// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u0008\u000a-\u001f\u007f\u0085\u2028\u2029]/;

/** Whether a text may go into a header as is: no CR, LF or other control characters. */
export function isHeaderSafe(text: string): boolean {
  return !controlCharacters.test(text);
}

/** Checks one address; returns what is wrong with it, or undefined when it is fine. */
function addressProblem(address: string): string | undefined {
  if (!isHeaderSafe(address)) return 'must not contain line breaks or control characters';
  if (address.length > maxAddressLength) return `must be at most ${maxAddressLength} characters`;
  if (address.indexOf('@') > maxLocalPartLength) return `the part before "@" must be at most ${maxLocalPartLength} characters`;
  if (!addressPattern.test(address)) return `expected an email address like "name@example.com", got ${JSON.stringify(address)}`;
  return undefined;
}

/** Checks a display name; returns what is wrong with it, or undefined when it is fine. */
function nameProblem(name: string): string | undefined {
  if (!isHeaderSafe(name)) return 'must not contain line breaks or control characters';
  if (name.length > maxNameLength) return `must be at most ${maxNameLength} characters`;
  return undefined;
}

/** Turns a checked address into the stored shape. */
export function toMailbox(value: EmailAddress): Mailbox {
  if (typeof value === 'string') return { address: value };
  return value.name ? { address: value.address, name: value.name } : { address: value.address };
}

/** One address or a list of them, as options and `$send` fields accept. */
export type EmailAddresses = EmailAddress | readonly EmailAddress[];

export function toMailboxes(value: EmailAddresses | undefined): Mailbox[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? (value as readonly EmailAddress[]) : [value as EmailAddress];
  return list.map(toMailbox);
}

/** Keeps the first of each address, compared without regard to case. */
export function uniqueMailboxes(mailboxes: readonly Mailbox[]): Mailbox[] {
  const seen = new Set<string>();
  const unique: Mailbox[] = [];
  for (const mailbox of mailboxes) {
    const key = mailbox.address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push(mailbox);
  }
  return unique;
}

/** Where a problem sits inside an address value: list indexes and keys. */
export type AddressPath = (string | number)[];

/** Checks one address value or a list of them; returns the first problem and where it sits, or undefined. */
export function addressesProblem(value: unknown): { at: AddressPath; message: string } | undefined {
  const list = Array.isArray(value) ? value : [value];
  for (const [index, entry] of list.entries()) {
    const at: AddressPath = Array.isArray(value) ? [index] : [];
    if (typeof entry === 'string') {
      const problem = addressProblem(entry);
      if (problem) return { at, message: problem };
      continue;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      return { at, message: `expected an address string or { name, address }, got ${describe(entry)}` };
    }
    const { name, address, ...rest } = entry as Record<string, unknown>;
    const unknown = Object.keys(rest)[0];
    if (unknown !== undefined) return { at: [...at, unknown], message: 'unknown key (expected name and address)' };
    if (typeof address !== 'string') return { at: [...at, 'address'], message: `expected an address string, got ${describe(address)}` };
    const problem = addressProblem(address);
    if (problem) return { at: [...at, 'address'], message: problem };
    if (name !== undefined) {
      if (typeof name !== 'string') return { at: [...at, 'name'], message: `expected a string, got ${describe(name)}` };
      const nameIssue = nameProblem(name);
      if (nameIssue) return { at: [...at, 'name'], message: nameIssue };
    }
  }
  return undefined;
}

/** `['to', 1, 'address']` as `to[1].address`. */
export function formatPath(path: AddressPath): string {
  return path.map((segment, index) => (typeof segment === 'number' ? `[${segment}]` : index === 0 ? segment : `.${segment}`)).join('');
}

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value) ?? typeof value;
}
