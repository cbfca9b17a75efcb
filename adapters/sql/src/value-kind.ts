/**
 * What a payload value tells about the column it needs. `null` and `undefined` tell nothing: a
 * missing field and a null field read the same (NULL), so they never decide a column's type.
 */
export type ValueKind = 'number' | 'boolean' | 'date' | 'timestamp' | 'timestamptz' | 'json' | 'bytes' | 'text';

const datePattern = /^(\d{4})-(\d{2})-(\d{2})$/;
// A date, a space or `T`, a time with up to six fractional digits (what every dialect keeps), and
// for `timestamptz` a zone: `Z` or an offset.
const timestampPattern = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})?$/;

/** The kind of one value, or `undefined` for null and undefined. */
export function kindOf(value: unknown): ValueKind | undefined {
  if (value === null || value === undefined) return undefined;
  switch (typeof value) {
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'string':
      return kindOfString(value);
    case 'object':
      return value instanceof Uint8Array ? 'bytes' : 'json';
    default:
      return 'text';
  }
}

function kindOfString(value: string): ValueKind {
  // Cheap first-character test: most strings are not dates, and the regular expressions cost more.
  const first = value.charCodeAt(0);
  if (value.length < 10 || first < 48 || first > 57) return 'text';
  const date = datePattern.exec(value);
  if (date) return isCalendarDate(date[1]!, date[2]!, date[3]!) ? 'date' : 'text';
  const timestamp = timestampPattern.exec(value);
  if (timestamp && isCalendarDate(timestamp[1]!, timestamp[2]!, timestamp[3]!) && isClockTime(timestamp[4]!, timestamp[5]!, timestamp[6]!)) {
    return timestamp[7] === undefined ? 'timestamp' : 'timestamptz';
  }
  return 'text';
}

const daysInMonth = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

// `2024-02-30` matches the pattern but no database accepts it: such a string is text, not a date.
function isCalendarDate(year: string, month: string, day: string): boolean {
  const y = Number(year);
  const m = Number(month);
  const d = Number(day);
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  return d <= daysInMonth[m - 1]! + (m === 2 && isLeapYear(y) ? 1 : 0);
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function isClockTime(hours: string, minutes: string, seconds: string): boolean {
  return Number(hours) < 24 && Number(minutes) < 60 && Number(seconds) < 60;
}

/** The kind a column needs for two kinds of values seen in one field: equal kinds stay, mixed ones become text. */
export function mergeKinds(current: ValueKind | undefined, next: ValueKind | undefined): ValueKind | undefined {
  if (current === undefined) return next;
  if (next === undefined || next === current) return current;
  return 'text';
}

/** The text a value of any kind is stored as in a column that became text. */
export function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
