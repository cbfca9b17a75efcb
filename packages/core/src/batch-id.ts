import { createHash } from 'node:crypto';

/**
 * A batch id is the SHA-256 (64 hex characters) of its event ids in order, so the same events
 * always make the same batch id: a retried batch keeps its id and sinks can deduplicate by it
 * (the S3 object key, for instance, is derived from it).
 */
export function createBatchId(destination: string, eventIds: readonly string[]): string {
  const hash = createHash('sha256').update(destination).update('\n');
  for (const id of eventIds) hash.update(id).update('\n');
  return hash.digest('hex');
}
