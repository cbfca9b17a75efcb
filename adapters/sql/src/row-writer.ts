import { PermanentError } from '@egress/core';
import { inTransaction } from './database-connection.js';
import { databaseMessage, type ColumnDescription, type Dialect, type DriverConnection, type Execute } from './dialect.js';
import { eventIdColumn } from './sql-input.js';

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
 * nothing twice. All rows go in one transaction: one array statement where the dialect has one
 * (PostgreSQL), otherwise VALUES lists split as the parameter limit and the packet size require.
 */
export class RowWriter {
  private readonly columnList: string;
  private readonly suffix: string;
  private readonly rowsPerStatement: number;
  private readonly width: number;

  /** `columns` are every column a row fills, in the order of `PreparedRow.values`: event id, sent time, then the fields. */
  constructor(
    private readonly dialect: Dialect,
    private readonly table: string,
    private readonly columns: readonly ColumnDescription[],
  ) {
    const names = columns.map((column) => column.name);
    this.columnList = names.map((name) => dialect.quote(name)).join(', ');
    this.suffix = dialect.ignoreDuplicates(eventIdColumn);
    this.width = names.length;
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
    const single = this.dialect.arrayInsert?.(this.table, this.columns, rows.map((row) => row.values), this.suffix);
    if (single) {
      await execute(single.sql, single.values);
      return;
    }
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
    const width = this.width;
    const values = new Array<unknown>((end - start) * width);
    let position = 0;
    for (let index = start; index < end; index += 1) {
      const row = rows[index]!.values;
      for (let column = 0; column < width; column += 1) values[position++] = row[column];
    }
    await execute(`INSERT INTO ${this.dialect.quote(this.table)} (${this.columnList}) VALUES ${valuesList(this.dialect, width, end - start)}${this.suffix}`, values);
  }
}

// Batches of one table repeat the same shape (columns × rows), and a VALUES list of 65,535
// placeholders is worth building once.
const valuesLists = new Map<string, string>();
const maxValuesLists = 64;

function valuesList(dialect: Dialect, width: number, rows: number): string {
  const key = `${dialect.name}:${width}:${rows}`;
  let list = valuesLists.get(key);
  if (list === undefined) {
    const tuples = new Array<string>(rows);
    for (let row = 0; row < rows; row += 1) {
      const placeholders = new Array<string>(width);
      for (let column = 0; column < width; column += 1) placeholders[column] = dialect.placeholder(row * width + column);
      tuples[row] = `(${placeholders.join(', ')})`;
    }
    list = tuples.join(', ');
    if (valuesLists.size >= maxValuesLists) valuesLists.delete(valuesLists.keys().next().value!);
    valuesLists.set(key, list);
  }
  return list;
}
