import { randomFillSync } from 'node:crypto';

let lastMillis = 0;
let sequence = 0;
// One system call per 256 ids instead of one per id.
const randomPool = Buffer.alloc(8 * 256);
let randomOffset = randomPool.length;
const scratch = Buffer.alloc(8);
// The id is written as ASCII straight into this buffer and read out as one string: one allocation
// per id instead of a hex string, five slices and their concatenation.
const text = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');
const hexDigits = Buffer.from('0123456789abcdef', 'latin1');
/** Where each of the 16 bytes goes in the 8-4-4-4-12 layout. */
const textOffsets = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

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
  for (let index = 0; index < 8; index++) writeHex(index, scratch[index]!);
  // The random half is read straight from the pool: copying 8 bytes costs a call into C++.
  writeHex(8, (randomPool[randomOffset]! & 0x3f) | 0x80);
  for (let index = 9; index < 16; index++) writeHex(index, randomPool[randomOffset + index - 8]!);
  randomOffset += 8;
  return text.toString('latin1', 0, 36);
}

/** Writes byte `index` of the 16 as two hex digits at its place in the text. */
function writeHex(index: number, byte: number): void {
  const at = textOffsets[index]!;
  text[at] = hexDigits[byte >> 4]!;
  text[at + 1] = hexDigits[byte & 0x0f]!;
}

/** The millisecond timestamp encoded in an event id made by `createEventId`. */
export function eventIdTime(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
