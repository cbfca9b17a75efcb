/**
 * Payloads are serialized once, when `$send` accepts them, so every store keeps the same text and
 * the caller may change its objects afterwards without changing what is delivered. JSON cannot
 * carry bytes, so `Uint8Array` (and Buffer) values are written as `{"$egress:bytes": "<base64>"}`.
 */
const bytesTag = '$egress:bytes';

export function encodePayload(payload: unknown): string {
  const text = JSON.stringify(payload);
  if (text === undefined) throw new TypeError('payload is not serializable');
  // A replacer makes JSON.stringify several times slower, so it runs only when the plain output
  // shows a trace of bytes: a Buffer's own JSON, a Uint8Array's indexed keys, or `{}` (an empty one).
  // Each probe starts with a character that is rare in JSON text: V8 scans for such a short pattern
  // directly, while one that starts with a quote (`"type":"Buffer"`) makes it build a skip table
  // for every call, which cost more than the rest of the check.
  if (text.includes('Buffer","data":[') || text.includes('{"0":') || text.includes('{}')) return JSON.stringify(payload, bytesReplacer);
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
