export { sql, type SqlOptions } from './sql-destination.js';
export type { SqlInput, SqlPayload } from './sql-input.js';
export type { ValueKind } from './value-kind.js';
