/**
 * Builds the bytes of SSE frames. Every field value here is free of CR and LF by construction.
 * Frames are Buffers: node:http would otherwise wrap a plain Uint8Array in a new Buffer on every
 * write, once per subscriber.
 */

/** Each frame owns its memory: one kept in the replay window must not keep a shared pool slab alive. */
export function encodeText(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text);
  return bytes;
}

/** One event; `data` is JSON, which never holds a raw line break, so one `data:` line suffices. */
export function eventFrame(id: string, event: string, json: string): Buffer {
  return encodeText(`id: ${id}\nevent: ${event}\ndata: ${json}\n\n`);
}

export const keepaliveFrame = encodeText(':keepalive\n\n');

export function retryFrame(milliseconds: number): Buffer {
  return encodeText(`retry: ${Math.round(milliseconds)}\n\n`);
}

export function concatenate(chunks: readonly Buffer[]): Buffer {
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
