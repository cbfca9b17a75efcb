import type { Batch } from '@egress/core';
import type { ColumnDescription, Dialect } from './dialect.js';
import type { PreparedRow } from './row-writer.js';
import type { SqlPayload } from './sql-input.js';
import { kindOf, mergeKinds, type ValueKind } from './value-kind.js';

/** The column kind each field needs across the batch; fields only ever null need none yet. */
export function neededColumns(events: Batch<SqlPayload>['events']): Map<string, ValueKind> {
  const needed = new Map<string, ValueKind>();
  for (const event of events) {
    const payload = event.payload.payload;
    for (const field in payload) {
      const kind = kindOf(payload[field]);
      if (kind === undefined) continue;
      const merged = mergeKinds(needed.get(field), kind);
      if (merged !== undefined) needed.set(field, merged);
    }
  }
  return needed;
}

export function prepareRows(dialect: Dialect, events: Batch<SqlPayload>['events'], needed: ReadonlyMap<string, ValueKind>, columns: readonly ColumnDescription[]): PreparedRow[] {
  const fields = [...needed.keys()];
  const kinds = columns.map((column) => column.kind);
  const width = fields.length + 2;
  return events.map((event) => {
    const payload = event.payload.payload;
    const values = new Array<unknown>(width);
    values[0] = event.id;
    values[1] = dialect.sentAt(event.sentAt);
    let characters = 64;
    for (let index = 0; index < fields.length; index += 1) {
      const value = dialect.encode(payload[fields[index]!], kinds[index]!);
      characters += typeof value === 'string' ? value.length : value instanceof Uint8Array ? value.byteLength * 2 : 8;
      values[index + 2] = value;
    }
    return { eventId: event.id, values, characters };
  });
}
