import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEventId, encodePayload, type QueuedEvent } from '@egress/core';

/** A fresh directory for one test's queue files, removed by the returned function. */
export function temporaryDirectory(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'egress-sqlite-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** An event as core would queue it. */
export function queuedEvent(index: number, overrides: Partial<QueuedEvent> = {}): QueuedEvent {
  const payload = encodePayload({ n: index });
  return { id: createEventId(), destination: 'test', partition: '', payload, size: payload.length, sentAt: 1_000, attempts: 0, ...overrides };
}

export const claimDefaults = {
  destination: 'test',
  now: 2_000,
  owner: 'worker',
  maxBatches: 10,
  maxEvents: 10,
  maxBytes: 1_000_000,
  maxDelay: 0,
  force: false,
  fifo: false,
  leaseMs: 30_000,
};
