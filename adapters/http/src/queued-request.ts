import { isHttpMethod, type HttpMethod } from './http-input-schema.js';

/** The request of an event queued in the common shape: method, URL and a JSON body, nothing else. */
export interface QueuedRequest {
  readonly method: HttpMethod | undefined;
  readonly url: string;
  /** The JSON text of `data`, sent as it is; undefined when the call had no `data`. */
  readonly body: string | undefined;
}

const methodOpening = '"method":"';
const urlOpening = '"url":"';
const dataOpening = ',"data":';
// How core's payload codec marks bytes; a body holding such a mark needs decoding to be sent right.
const bytesMark = '$egress:bytes';

/**
 * Reads `{"method":"…","url":"…","data":<object or array>}` (method and data optional) straight
 * from the JSON text an event was queued as: the body is a slice of that text, so the payload is
 * neither parsed nor encoded again, which for one small request costs more than the rest of
 * preparing it. JSON.stringify writes `data` nested exactly as it would write it alone. Anything
 * else (headers, params, auth, a timeout, a string or bytes body, an escaped URL, a store that
 * normalises JSON) gives undefined, and the caller works from the decoded payload instead.
 */
export function readQueuedRequest(text: string | undefined): QueuedRequest | undefined {
  if (text === undefined || text.charCodeAt(0) !== 0x7b || text.charCodeAt(text.length - 1) !== 0x7d) return undefined;
  let at = 1;
  let method: HttpMethod | undefined;
  if (text.startsWith(methodOpening, at)) {
    const end = text.indexOf('"', at + methodOpening.length);
    const name = end < 0 ? '' : text.slice(at + methodOpening.length, end);
    if (!isHttpMethod(name) || text.charCodeAt(end + 1) !== 0x2c) return undefined;
    method = name;
    at = end + 2;
  }
  if (!text.startsWith(urlOpening, at)) return undefined;
  const urlStart = at + urlOpening.length;
  const urlEnd = text.indexOf('"', urlStart);
  if (urlEnd < 0) return undefined;
  const url = text.slice(urlStart, urlEnd);
  // An escape (or an escaped quote, which ends the search early) means the text is not the URL.
  if (url.includes('\\')) return undefined;
  at = urlEnd + 1;
  if (at === text.length - 1) return { method, url, body: undefined };
  if (!text.startsWith(dataOpening, at)) return undefined;
  const dataStart = at + dataOpening.length;
  const open = text.charCodeAt(dataStart);
  if (open !== 0x7b && open !== 0x5b) return undefined;
  if (containerEnd(text, dataStart) !== text.length - 1 || text.includes(bytesMark, dataStart)) return undefined;
  return { method, url, body: text.slice(dataStart, -1) };
}

/** The index just past the JSON object or array that opens at `start`, or -1 if it does not close. */
function containerEnd(text: string, start: number): number {
  let depth = 0;
  for (let index = start; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code === 0x22) {
      // Skip the string; a backslash escapes the next character, which may be a quote.
      for (index++; index < text.length; index++) {
        const inner = text.charCodeAt(index);
        if (inner === 0x5c) index++;
        else if (inner === 0x22) break;
      }
    } else if (code === 0x7b || code === 0x5b) {
      depth++;
    } else if ((code === 0x7d || code === 0x5d) && --depth === 0) {
      return index + 1;
    }
  }
  return -1;
}
