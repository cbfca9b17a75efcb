import { PermanentError } from '@egress/core';
import { inTransaction } from './database-connection.js';
import { databaseMessage, type ColumnDescription, type Dialect, type DriverConnection, type Execute } from './dialect.js';
import { eventIdColumn, sentAtColumn } from './sql-input.js';

/** One row ready to bind: the event id first, then the sent time, then one value per column. */
export interface PreparedRow {
  readonly eventId: string;
  readonly values: readonly unknown[];
  /** Rough size of the values in characters, to keep one statement under the packet limit. */
  readonly characters: number;
}

export interface RowFailure {
  readonly eventId: string;
  readonly error: PermanentError;
}

/**
 * Inserts rows with multi-row INSERTs that skip event ids already present, so a retried batch adds
 * nothing twice. All rows go in one transaction, split into as many statements as the dialect's
 * parameter limit needs.
 */
export class RowWriter {
  private readonly columnList: string;
  private readonly suffix: string;
  private readonly rowsPerStatement: number;

  constructor(
    private readonly dialect: Dialect,
    private readonly table: string,
    columns: readonly ColumnDescription[],
  ) {
    const names = [eventIdColumn, sentAtColumn, ...columns.map((column) => column.name)];
    this.columnList = names.map((name) => dialect.quote(name)).join(', ');
    this.suffix = dialect.ignoreDuplicates(eventIdColumn);
    this.rowsPerStatement = Math.max(1, Math.floor(dialect.maxParameters / names.length));
  }

  /**
   * Inserts every row in one transaction. When a value or a constraint is refused, finds the rows
   * to blame by halving (each half in its own transaction) and reports them; the others arrive.
   */
  async write(connection: DriverConnection, rows: readonly PreparedRow[]): Promise<RowFailure[]> {
    try {
      await inTransaction(this.dialect, connection, (execute) => this.insert(execute, rows));
      return [];
    } catch (error) {
      if (this.dialect.classify(error, 'dml') !== 'row') throw error;
      if (rows.length === 1) {
        return [{ eventId: rows[0]!.eventId, error: new PermanentError(`[sql] ${this.table}: ${databaseMessage(error)}`, { cause: error }) }];
      }
      const middle = Math.ceil(rows.length / 2);
      const first = await this.write(connection, rows.slice(0, middle));
      const second = await this.write(connection, rows.slice(middle));
      return [...first, ...second];
    }
  }

  private async insert(execute: Execute, rows: readonly PreparedRow[]): Promise<void> {
    let start = 0;
    while (start < rows.length) {
      let end = start;
      let characters = 0;
      while (end < rows.length && end - start < this.rowsPerStatement && (end === start || characters + rows[end]!.characters <= this.dialect.maxStatementCharacters)) {
        characters += rows[end]!.characters;
        end += 1;
      }
      await this.insertStatement(execute, rows, start, end);
      start = end;
    }
  }

  private async insertStatement(execute: Execute, rows: readonly PreparedRow[], start: number, end: number): Promise<void> {
    const values: unknown[] = [];
    const tuples: string[] = [];
    for (let index = start; index < end; index += 1) {
      const row = rows[index]!.values;
      const placeholders: string[] = [];
      for (const value of row) {
        placeholders.push(this.dialect.placeholder(values.length));
        values.push(value);
      }
      tuples.push(`(${placeholders.join(', ')})`);
    }
    await execute(`INSERT INTO ${this.dialect.quote(this.table)} (${this.columnList}) VALUES ${tuples.join(', ')}${this.suffix}`, values);
  }
}
