import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks secrets are `whsec_` followed by base64 key bytes; the prefix is optional, as
 * in the reference libraries. Returns undefined for anything else, so the caller can refuse it
 * without echoing it.
 */
export function parseSigningSecret(secret: unknown): Buffer | undefined {
  if (typeof secret !== 'string') return undefined;
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return undefined;
  const key = Buffer.from(encoded, 'base64');
  return key.length > 0 ? key : undefined;
}

/**
 * The three Standard Webhooks headers for one request: the signed content is
 * `${id}.${timestamp}.${body}`, signed with HMAC-SHA256 under every key so that a receiver holding
 * either the old or the new secret accepts it while secrets rotate.
 */
export function signatureHeaders(id: string, timestampSeconds: number, body: Uint8Array | string | undefined, keys: readonly Buffer[]): Record<string, string> {
  const prefix = `${id}.${timestampSeconds}.`;
  const signatures = keys.map((key) => {
    const hmac = createHmac('sha256', key).update(prefix);
    if (body !== undefined) hmac.update(body);
    return `v1,${hmac.digest('base64')}`;
  });
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': signatures.join(' '),
  };
}
