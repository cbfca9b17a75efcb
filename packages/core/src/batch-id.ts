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
  if (eventIds.length === 1 && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(eventIds[0]!)) {
    return eventIds[0]!.replaceAll('-', '') + destinationDigest(destination);
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
