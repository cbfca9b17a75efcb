import { z } from 'zod';

/** Columns this destination adds to every table; payload fields may not use the prefix. */
export const reservedColumnPrefix = '_egress_';
export const eventIdColumn = '_egress_event_id';
export const sentAtColumn = '_egress_sent_at';

// PostgreSQL silently truncates longer identifiers to 63 bytes; MySQL stops at 64 characters.
const maxIdentifierBytes = 63;
// `?` would be read as a placeholder by the drivers' own parameter substitution, whatever the quoting;
// quotes, backticks and backslashes have no business in a column name; control characters and a
// trailing space are refused by MySQL.
const forbiddenFieldCharacters = /[?"`\\\u0000-\u001f\u007f]/;

function fieldNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'field names may not be empty';
  if (Buffer.byteLength(name) > maxIdentifierBytes) return `field name is longer than ${maxIdentifierBytes} bytes`;
  if (forbiddenFieldCharacters.test(name)) return 'field names may not contain ?, quotes, backticks, backslashes or control characters';
  if (name.endsWith(' ')) return 'field names may not end with a space';
  if (name.toLowerCase().startsWith(reservedColumnPrefix)) return `field names starting with "${reservedColumnPrefix}" are reserved for the columns Egress adds`;
  return undefined;
}

// Field names already found valid, and whether they are lower case. Events from one call site repeat
// the same fields; checking each name again for each event would cost more than the rest of
// validation. A payload whose names are all known and lower case cannot hold two names that differ
// only in case, so it needs no further check.
const validNames = new Map<string, boolean>();
const maxRememberedNames = 10_000;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** `$send.sql({ table, payload })`: one row to append to `table`. */
export const sqlInputSchema = z.strictObject({
  /** Letters, digits and underscore, not starting with an underscore (as Pipedream's). */
  table: z
    .string()
    .regex(/^(?!_)[a-z0-9_]+$/i, 'expected letters, digits and underscore, not starting with an underscore')
    .max(maxIdentifierBytes, `expected at most ${maxIdentifierBytes} characters`),
  /** The row: each top-level field becomes a column. */
  payload: z
    .custom<Record<string, unknown>>(isPlainObject, { error: 'expected an object whose fields become columns' })
    .superRefine((payload, context) => {
      let known = true;
      for (const name in payload) {
        if (validNames.get(name) !== true) {
          known = false;
          break;
        }
      }
      if (known) return;
      const seen = new Map<string, string>();
      for (const name of Object.keys(payload)) {
        const problem = fieldNameProblem(name);
        if (problem) {
          context.addIssue({ code: 'custom', message: problem, path: [name] });
          continue;
        }
        // MySQL and SQLite column names ignore case: `Name` and `name` would be one column there.
        const folded = name.toLowerCase();
        const other = seen.get(folded);
        if (other !== undefined) context.addIssue({ code: 'custom', message: `fields "${other}" and "${name}" differ only in case`, path: [name] });
        seen.set(folded, name);
        if (validNames.size >= maxRememberedNames) validNames.clear();
        validNames.set(name, folded === name);
      }
    }),
});

export type SqlInput = z.input<typeof sqlInputSchema>;
export type SqlPayload = z.output<typeof sqlInputSchema>;
