const bucketOpening = '{"bucket":';
const prefixOpening = ',"prefix":';
const payloadOpening = ',"payload":';

/** The parts of a queued `$send.s3` input, each still as JSON text. */
export interface QueuedJsonParts {
  /** The bucket as a JSON string, quotes included. */
  bucketJson: string;
  /** The prefix as a JSON string, quotes included. */
  prefixJson: string;
  /** The payload's JSON: the event's NDJSON line, without its newline. */
  line: string;
}

/**
 * Splits the JSON text an s3 event was queued as, `{"bucket":"…","prefix":"…","payload":…}` in the
 * input schema's key order, without parsing the payload. JSON.stringify writes the payload nested
 * exactly as it would write it alone, so its line is a slice of the text. Any other shape (a store
 * that normalises JSON, say) gives undefined, and the caller encodes the decoded payload instead.
 */
export function splitQueuedJson(text: string | undefined): QueuedJsonParts | undefined {
  if (text === undefined || !text.startsWith(bucketOpening) || !text.endsWith('}')) return undefined;
  const bucketEnd = jsonStringEnd(text, bucketOpening.length);
  if (bucketEnd < 0 || !text.startsWith(prefixOpening, bucketEnd)) return undefined;
  const prefixStart = bucketEnd + prefixOpening.length;
  const prefixEnd = jsonStringEnd(text, prefixStart);
  if (prefixEnd < 0 || !text.startsWith(payloadOpening, prefixEnd)) return undefined;
  return {
    bucketJson: text.slice(bucketOpening.length, bucketEnd),
    prefixJson: text.slice(prefixStart, prefixEnd),
    line: text.slice(prefixEnd + payloadOpening.length, -1),
  };
}

/** The index just past the JSON string that opens at `start`, or -1 if none opens there. */
function jsonStringEnd(text: string, start: number): number {
  if (text.charCodeAt(start) !== 0x22) return -1;
  for (let index = start + 1; index < text.length; index++) {
    const code = text.charCodeAt(index);
    // A backslash escapes the next character, which may be a quote.
    if (code === 0x5c) index++;
    else if (code === 0x22) return index + 1;
  }
  return -1;
}
