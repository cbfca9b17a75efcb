import { randomFillSync } from 'node:crypto';

let lastMillis = 0;
let sequence = 0;
// One system call per 256 ids instead of one per id.
const randomPool = Buffer.alloc(8 * 256);
let randomOffset = randomPool.length;
const scratch = Buffer.alloc(16);

/**
 * A UUIDv7: 48 bits of Unix milliseconds, then a 12-bit counter so that ids made in the same
 * millisecond by this process still sort in the order they were made, then random bits.
 * Sorting event ids as strings sorts them by the time they were sent.
 */
export function createEventId(now = Date.now()): string {
  if (now > lastMillis) {
    lastMillis = now;
    sequence = 0;
  } else if (++sequence > 0xfff) {
    // More than 4096 ids in one millisecond: borrow the next millisecond rather than repeat.
    lastMillis += 1;
    sequence = 0;
  }
  if (randomOffset === randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  scratch.writeUIntBE(lastMillis, 0, 6);
  scratch[6] = 0x70 | (sequence >> 8);
  scratch[7] = sequence & 0xff;
  randomPool.copy(scratch, 8, randomOffset, randomOffset + 8);
  randomOffset += 8;
  scratch[8] = (scratch[8]! & 0x3f) | 0x80;
  const hex = scratch.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The millisecond timestamp encoded in an event id made by `createEventId`. */
export function eventIdTime(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
