import { createHash } from 'node:crypto';

const destinationDigests = new Map<string, string>();

/**
 * A batch id is 64 hex characters derived from the destination and its event ids in order, so
 * the same events always make the same batch id: a retried batch keeps its id and sinks can
 * deduplicate by it (the S3 object key, for instance, is derived from it). Several events are
 * hashed with SHA-256; a single event — every batch of an unbatched destination — takes its own
 * 32 hex digits followed by 32 of the destination's digest, which is as unique and costs no hash.
 */
export function createBatchId(destination: string, eventIds: readonly string[]): string {
  if (eventIds.length === 1 && isEventIdShape(eventIds[0]!)) {
    const id = eventIds[0]!;
    return id.slice(0, 8) + id.slice(9, 13) + id.slice(14, 18) + id.slice(19, 23) + id.slice(24) + destinationDigest(destination);
  }
  return createHash('sha256').update(`${destination}\n${eventIds.join('\n')}\n`).digest('hex');
}

function destinationDigest(destination: string): string {
  let digest = destinationDigests.get(destination);
  if (digest === undefined) {
    digest = createHash('sha256').update(`destination\n${destination}`).digest('hex').slice(0, 32);
    if (destinationDigests.size < 10_000) destinationDigests.set(destination, digest);
  }
  return digest;
}

/** Lower-case hex in the 8-4-4-4-12 layout; checked by hand because it runs once per delivery. */
function isEventIdShape(id: string): boolean {
  if (id.length !== 36) return false;
  for (let index = 0; index < 36; index++) {
    const code = id.charCodeAt(index);
    if (index === 8 || index === 13 || index === 18 || index === 23) {
      if (code !== 0x2d) return false;
    } else if (!((code >= 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x66))) {
      return false;
    }
  }
  return true;
}
