/**
 * Payloads are serialized once, when `$send` accepts them, so every store keeps the same text and
 * the caller may change its objects afterwards without changing what is delivered. JSON cannot
 * carry bytes, so `Uint8Array` (and Buffer) values are written as `{"$egress:bytes": "<base64>"}`.
 */
const bytesTag = '$egress:bytes';

export function encodePayload(payload: unknown): string {
  // A replacer makes JSON.stringify several times slower; most payloads hold no bytes and need none.
  const text = containsBytes(payload, 0) ? JSON.stringify(payload, bytesReplacer) : JSON.stringify(payload);
  if (text === undefined) throw new TypeError('payload is not serializable');
  return text;
}

function bytesReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  // Buffer#toJSON has already run on `value`; the holder still has the original.
  const original = this[key];
  if (original instanceof Uint8Array) {
    return { [bytesTag]: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64') };
  }
  return value;
}

function containsBytes(value: unknown, depth: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (value instanceof Uint8Array) return true;
  // Deeper than any sane payload: let the replacer handle it rather than recurse further.
  if (depth > 32) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (containsBytes(item, depth + 1)) return true;
    return false;
  }
  for (const key in value) if (containsBytes((value as Record<string, unknown>)[key], depth + 1)) return true;
  return false;
}

export function decodePayload(text: string): unknown {
  if (!text.includes(bytesTag)) return JSON.parse(text);
  return JSON.parse(text, (_key, value: unknown) => {
    if (typeof value === 'object' && value !== null && bytesTag in value) {
      const encoded = (value as Record<string, unknown>)[bytesTag];
      if (typeof encoded === 'string' && Object.keys(value).length === 1) return new Uint8Array(Buffer.from(encoded, 'base64'));
    }
    return value;
  });
}
