/** A duration in milliseconds, or a string such as `'250ms'`, `'60s'`, `'5m'`, `'2h'`, `'1d'`. */
export type Duration = number | `${number}${DurationUnit}`;
type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd';

/** A size in bytes, or a string such as `'512B'`, `'64KiB'`, `'8MiB'`, `'1GiB'`, `'10MB'`. */
export type Size = number | `${number}${SizeUnit}`;
type SizeUnit = 'B' | 'KB' | 'MB' | 'GB' | 'KiB' | 'MiB' | 'GiB';

const durationUnits: Record<DurationUnit, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const sizeUnits: Record<SizeUnit, number> = {
  B: 1,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

/** Parses a duration; returns a message saying what was expected when the value is not one. */
export function parseDuration(value: unknown): number | { error: string } {
  return parseQuantity(value, durationUnits, "a duration in milliseconds or a string like '500ms', '60s', '5m', '2h'");
}

/** Parses a size; returns a message saying what was expected when the value is not one. */
export function parseSize(value: unknown): number | { error: string } {
  return parseQuantity(value, sizeUnits, "a size in bytes or a string like '512KiB', '8MiB', '10MB'");
}

function parseQuantity(value: unknown, units: Record<string, number>, expected: string): number | { error: string } {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? value : { error: `expected ${expected}, got ${value}` };
  }
  if (typeof value === 'string') {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$/.exec(value);
    const multiplier = match ? units[match[2]!] : undefined;
    if (match && multiplier !== undefined) return Math.round(Number(match[1]) * multiplier);
  }
  return { error: `expected ${expected}, got ${JSON.stringify(value)}` };
}
