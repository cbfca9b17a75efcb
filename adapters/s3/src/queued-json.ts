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
 * Where the payload's JSON starts in the JSON text an s3 event was queued as,
 * `{"bucket":"…","prefix":"…","payload":…}` in the input schema's key order, or -1 for any other
 * shape (a store that normalises JSON, say), in which case the caller encodes the decoded payload
 * instead. JSON.stringify writes the payload nested exactly as it would write it alone, so the
 * event's NDJSON line is `text.slice(start, -1)`, and `text.slice(0, start)` names its object:
 * two events go to the same object exactly when those heads are equal. Reads only bucket and
 * prefix and allocates nothing, because it runs for every event, at `$send` and at delivery.
 */
export function payloadStart(text: string | undefined): number {
  if (text === undefined || !text.startsWith(bucketOpening) || text.charCodeAt(text.length - 1) !== 0x7d) return -1;
  const bucketEnd = jsonStringEnd(text, bucketOpening.length);
  if (bucketEnd < 0 || !text.startsWith(prefixOpening, bucketEnd)) return -1;
  const prefixEnd = jsonStringEnd(text, bucketEnd + prefixOpening.length);
  if (prefixEnd < 0 || !text.startsWith(payloadOpening, prefixEnd)) return -1;
  return prefixEnd + payloadOpening.length;
}

/** Bucket, prefix and line of a queued `$send.s3` input, each still as JSON text; see `payloadStart`. */
export function splitQueuedJson(text: string | undefined): QueuedJsonParts | undefined {
  const start = payloadStart(text);
  if (start < 0) return undefined;
  const bucketEnd = jsonStringEnd(text!, bucketOpening.length);
  return {
    bucketJson: text!.slice(bucketOpening.length, bucketEnd),
    prefixJson: text!.slice(bucketEnd + prefixOpening.length, start - payloadOpening.length),
    line: text!.slice(start, -1),
  };
}

/** How `encodePayload` writes an s3 event for this bucket and prefix, up to its payload. */
export function queuedHead(bucket: string, prefix: string): string {
  return `${bucketOpening}${JSON.stringify(bucket)}${prefixOpening}${JSON.stringify(prefix)}${payloadOpening}`;
}

/**
 * Whether `text` is the queued JSON of an event whose head (see `queuedHead`) is `head`: then its
 * payload starts at `head.length`, since the head ends where the payload begins.
 */
export function hasQueuedHead(text: string | undefined, head: string): text is string {
  return text !== undefined && text.startsWith(head) && text.charCodeAt(text.length - 1) === 0x7d;
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
