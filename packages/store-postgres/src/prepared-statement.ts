import { createHash } from 'node:crypto';
import type { QueryConfig } from 'pg';

const statementNames = new Map<string, string>();

/**
 * A query sent as a named prepared statement: each connection parses and plans it once rather than
 * on every call. The claim and settlement statements run for every few events and their planning
 * cost as much as their execution. The name is derived from the text (which names the schema), so
 * one text always gets one name and two texts never share one.
 */
export function prepared(text: string, values: unknown[]): QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `egress_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
    if (statementNames.size < 10_000) statementNames.set(text, name);
  }
  return { name, text, values };
}
