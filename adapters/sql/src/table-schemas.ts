import { RetryableError, type Logger } from '@egress/core';
import type { ColumnDescription, Dialect, Execute } from './dialect.js';
import { eventIdColumn, sentAtColumn } from './sql-input.js';
import type { ValueKind } from './value-kind.js';

/** Columns of one table, by name (lower-cased where the dialect ignores case). */
export type ColumnMap = ReadonlyMap<string, ColumnDescription>;

// Each round re-reads the schema after changing it; more rounds than this means other writers keep
// changing the same table, and the whole delivery is better retried later.
const maxRounds = 5;

/**
 * Keeps what is known of each table's columns and brings a table up to what a batch needs:
 * creates it, adds columns, turns columns seen with mixed types into text. Other processes may do
 * the same at the same moment; when they win a race the schema is read again.
 */
export class TableSchemas {
  private readonly known = new Map<string, ColumnMap>();
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(
    private readonly dialect: Dialect,
    private readonly logger: () => Logger,
  ) {}

  /** The lookup key of a column name. */
  key(name: string): string {
    return this.dialect.foldsColumnNames ? name.toLowerCase() : name;
  }

  /** Drops what is known of a table, e.g. after the database said it changed. */
  forget(table: string): void {
    this.known.delete(table);
  }

  /** Makes sure `table` has a column fit for each needed field, and returns its columns. */
  async prepare(execute: Execute, table: string, needed: ReadonlyMap<string, ValueKind>): Promise<ColumnMap> {
    const cached = this.known.get(table);
    if (cached && this.changesNeeded(cached, needed).length === 0) return cached;
    // One schema change per table at a time in this process; other processes are handled by re-reading.
    const previous = this.pending.get(table) ?? Promise.resolve();
    const turn = previous.then(() => this.evolve(execute, table, needed));
    const settled = turn.catch(() => undefined);
    this.pending.set(table, settled);
    try {
      return await turn;
    } finally {
      if (this.pending.get(table) === settled) this.pending.delete(table);
    }
  }

  private async evolve(execute: Execute, table: string, needed: ReadonlyMap<string, ValueKind>): Promise<ColumnMap> {
    // What is cached may be behind another writer's changes: decide on what the database says now,
    // so that a column another process already turned into text is not rewritten again.
    this.known.delete(table);
    for (let round = 0; round < maxRounds; round += 1) {
      let columns = this.known.get(table);
      if (!columns) {
        const described = await this.dialect.describeTable(execute, table);
        if (described) {
          columns = new Map(described.map((column) => [this.key(column.name), column]));
          this.known.set(table, columns);
        }
      }
      if (!columns) {
        await this.change(execute, this.createTable(table, needed));
        this.logger().info({ destination: 'sql', table, columns: [...needed.keys()] }, `created table ${table}`);
        continue;
      }
      const changes = this.changesNeeded(columns, needed);
      if (changes.length === 0) return columns;
      const missing = changes.filter((change) => change.column === undefined).map((change) => ({ name: change.name, kind: change.kind }));
      const statements = missing.length > 0 ? this.dialect.addColumns(table, missing) : [];
      for (const change of changes) {
        if (change.column !== undefined) statements.push(this.dialect.widenToText(table, change.column.name));
      }
      for (const statement of statements) await this.change(execute, statement);
      this.logger().info(
        { destination: 'sql', table, added: missing.map((column) => column.name), widened: changes.filter((change) => change.column).map((change) => change.name) },
        `changed table ${table}`,
      );
      this.known.delete(table);
    }
    throw new RetryableError(`[sql] ${table}: the table's schema kept changing under other writers`);
  }

  private changesNeeded(columns: ColumnMap, needed: ReadonlyMap<string, ValueKind>): { name: string; kind: ValueKind; column?: ColumnDescription }[] {
    const changes: { name: string; kind: ValueKind; column?: ColumnDescription }[] = [];
    for (const [name, kind] of needed) {
      const column = columns.get(this.key(name));
      if (column === undefined) changes.push({ name, kind });
      else if (this.dialect.widensColumns && !this.fits(column.kind, kind)) changes.push({ name, kind, column });
    }
    return changes;
  }

  private fits(column: ValueKind | 'other', value: ValueKind): boolean {
    return column === 'other' || column === 'text' || this.dialect.columnType(column) === this.dialect.columnType(value);
  }

  private createTable(table: string, needed: ReadonlyMap<string, ValueKind>): string {
    const definitions = [this.dialect.systemColumns(eventIdColumn, sentAtColumn)];
    for (const [name, kind] of needed) definitions.push(`${this.dialect.quote(name)} ${this.dialect.columnType(kind)}`);
    return `CREATE TABLE IF NOT EXISTS ${this.dialect.quote(table)} (${definitions.join(', ')})${this.dialect.tableOptions}`;
  }

  private async change(execute: Execute, statement: string): Promise<void> {
    try {
      await execute(statement);
    } catch (error) {
      // Someone else created the table or the column first: the next round reads what they made.
      if (this.dialect.classify(error, 'ddl') !== 'schema-race') throw error;
    }
  }
}
