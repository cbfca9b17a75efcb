import { randomFillSync } from 'node:crypto';

let lastMillis = 0;
let sequence = 0;
// One system call per 512 ids instead of one per id.
const randomPool = Buffer.alloc(8 * 512);
let randomOffset = randomPool.length;

function nextRandom(): Buffer {
  if (randomOffset === randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  randomOffset += 8;
  return randomPool.subarray(randomOffset - 8, randomOffset);
}

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
  const random = nextRandom();
  const time = lastMillis.toString(16).padStart(12, '0');
  const version = (0x7000 | sequence).toString(16);
  const variant = ((random[0]! & 0x3f) | 0x80).toString(16).padStart(2, '0') + random[1]!.toString(16).padStart(2, '0');
  const tail = random.subarray(2).toString('hex');
  return `${time.slice(0, 8)}-${time.slice(8)}-${version}-${variant}-${tail}`;
}

/** The millisecond timestamp encoded in an event id made by `createEventId`. */
export function eventIdTime(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
