/**
 * Payloads are serialized once, when `$send` accepts them, so every store keeps the same text and
 * the caller may change its objects afterwards without changing what is delivered. JSON cannot
 * carry bytes, so `Uint8Array` (and Buffer) values are written as `{"$egress:bytes": "<base64>"}`.
 */
const bytesTag = '$egress:bytes';

export function encodePayload(payload: unknown): string {
  const text = JSON.stringify(payload, function (this: Record<string, unknown>, key, value: unknown) {
    // Buffer#toJSON has already run on `value`; the holder still has the original.
    const original = this[key];
    if (original instanceof Uint8Array) {
      return { [bytesTag]: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64') };
    }
    return value;
  });
  if (text === undefined) throw new TypeError('payload is not serializable');
  return text;
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
