/** Builds the bytes of SSE frames. Every field value here is free of CR and LF by construction. */

const encoder = new TextEncoder();

export function encodeText(text: string): Uint8Array {
  return encoder.encode(text);
}

/** One event; `data` is JSON, which never holds a raw line break, so one `data:` line suffices. */
export function eventFrame(id: string, event: string, json: string): Uint8Array {
  return encoder.encode(`id: ${id}\nevent: ${event}\ndata: ${json}\n\n`);
}

export const keepaliveFrame = encodeText(':keepalive\n\n');

export function retryFrame(milliseconds: number): Uint8Array {
  return encoder.encode(`retry: ${Math.round(milliseconds)}\n\n`);
}

export function concatenate(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let length = 0;
  for (const chunk of chunks) length += chunk.byteLength;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined;
}
