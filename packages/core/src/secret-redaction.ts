/** What replaces a secret wherever a text could be printed or stored. */
export const redactedMark = '[redacted]';

/**
 * Values shorter than this are not masked by value: they would mask ordinary words and numbers in
 * every message, and are no real secret either. The patterns below still mask them where they
 * stand as a credential (`?token=abc`).
 */
export const shortestSecret = 4;

// Names of headers, query parameters and JSON fields that usually carry credentials.
const secretName = /^(?:key|sig|pass)$|auth(?!ors?$)|token|secret|passw|pwd|api[-_]?key|access[-_]?key|private[-_]?key|signature|session|cookie|credential|jwt/i;

/** Whether a header, query parameter or field of this name is treated as holding a secret. */
export function isSecretName(name: string): boolean {
  return secretName.test(name);
}

/**
 * Every spelling under which a secret may come back in a receiver's answer or an error: as it is,
 * URL-encoded (both `%20` and `+` for a space), base64 and base64url, and JSON-escaped.
 */
export function secretForms(secret: string): string[] {
  if (secret.length < shortestSecret) return [];
  const forms = new Set<string>([secret]);
  forms.add(encodeURIComponent(secret));
  forms.add(new URLSearchParams({ s: secret }).toString().slice(2));
  const bytes = Buffer.from(secret);
  forms.add(bytes.toString('base64'));
  forms.add(bytes.toString('base64url'));
  forms.add(bytes.toString('base64').replace(/=+$/, ''));
  forms.add(JSON.stringify(secret).slice(1, -1));
  return [...forms].filter((form) => form.length >= shortestSecret);
}

// `?access_token=…`, `&sig=…`, ` password=…`: a credential-like name and its value, in any text.
// A backslash ends a value too: inside JSON-escaped text it belongs to the quote that follows.
const queryPair = /(^|[?&;\s,])([^=&?#\s"'<>,;\\]{1,64})=([^&#\s"'<>,;\\]*)/g;
// `"authorization": "Bearer …"`, as a receiver echoing the request in a JSON body writes it.
const jsonPair = /"([^"\\]{1,64})"(\s*:\s*)"((?:[^"\\]|\\.)*)"/g;
// A scheme word and a credential, e.g. in an echoed `Authorization` header.
const schemeCredential = /\b(Bearer|Basic|Digest)(\s+)[A-Za-z0-9\-._~+/]{8,}=*/gi;
// `scheme://user:password@host`.
const userInfo = /(\/\/[^\s/:@]*:)[^\s/@]+@/g;

/**
 * Masks secrets in texts before they are stored or emitted: every value it was given, in each of
 * its spellings (see `secretForms`), and, for secrets nobody told it about, credential-like query
 * parameters, JSON fields, `Bearer`/`Basic` credentials and passwords in URLs. One instance per
 * set of secrets; the spellings are worked out once.
 */
export class SecretRedactor {
  private readonly forms: string[];
  private lastText: string | undefined;
  private lastResult = '';

  constructor(secrets: Iterable<string> = []) {
    const forms = new Set<string>();
    for (const secret of secrets) {
      if (typeof secret === 'string') for (const form of secretForms(secret)) forms.add(form);
    }
    // Longest first, so a secret that contains another is masked whole.
    this.forms = [...forms].sort((a, b) => b.length - a.length);
  }

  /** The text with every known secret and every credential-looking value replaced by `[redacted]`. */
  redact(text: string): string {
    // A failed batch reports the same message for each of its events: work it out once.
    if (text === this.lastText) return this.lastResult;
    const result = this.redactOnce(text);
    this.lastText = text;
    this.lastResult = result;
    return result;
  }

  private redactOnce(text: string): string {
    let result = text;
    for (const form of this.forms) {
      if (result.includes(form)) result = result.split(form).join(redactedMark);
    }
    if (!result.includes('=') && !result.includes('"') && !result.includes('@') && !/bearer|basic|digest/i.test(result)) return result;
    return result
      .replace(queryPair, (whole, before: string, name: string, value: string) => (value && value !== redactedMark && isSecretName(safeDecode(name)) ? `${before}${name}=${redactedMark}` : whole))
      .replace(jsonPair, (whole, name: string, colon: string, value: string) => (value && value !== redactedMark && isSecretName(name) ? `"${name}"${colon}"${redactedMark}"` : whole))
      .replace(schemeCredential, `$1$2${redactedMark}`)
      .replace(userInfo, `$1${redactedMark}@`);
  }
}

/** One-off form of `SecretRedactor#redact`. */
export function redactSecrets(text: string, secrets: Iterable<string> = []): string {
  return new SecretRedactor(secrets).redact(text);
}

function safeDecode(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}
