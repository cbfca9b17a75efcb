import { createHash } from 'node:crypto';

/**
 * A batch id is the SHA-256 (64 hex characters) of its event ids in order, so the same events
 * always make the same batch id: a retried batch keeps its id and sinks can deduplicate by it
 * (the S3 object key, for instance, is derived from it).
 */
export function createBatchId(destination: string, eventIds: readonly string[]): string {
  return createHash('sha256').update(`${destination}\n${eventIds.join('\n')}\n`).digest('hex');
}
