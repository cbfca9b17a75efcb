import type BetterSqlite3 from 'better-sqlite3';

interface Operation {
  run(): unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Group commit. Every store operation made during one turn of the event loop joins one
 * transaction, written at the next turn: many `enqueue` calls (and the claims and settlements
 * around them) cost one commit, and with `synchronous = FULL` one fsync. While that transaction is
 * written the thread is busy, so whatever arrives meanwhile queues up and forms the next group.
 *
 * Operations run in the order they were submitted, so a read sees every write submitted before it.
 * When a group fails, it is rolled back and each operation is tried again in a transaction of its
 * own, so one bad operation fails alone. Failures reach callers through `describeFailure` (typed
 * errors for a locked file or a full disk). When the file was removed under the connection, the
 * group asks `recreate` for a connection to a new file before it writes there.
 */
export class TransactionGroup {
  private pending: Operation[] = [];
  private scheduled = false;
  private closed = false;
  private runAll!: (group: Operation[]) => unknown[];
  private runOne!: (operation: Operation) => unknown;

  constructor(
    database: BetterSqlite3.Database,
    /** Called after any rollback, so callers can drop what they cached during the failed work. */
    private readonly onRollback: () => void,
    private readonly failures: {
      /** What a caller is rejected with for `error`. */
      describe(error: unknown): unknown;
      /** Whether the file was removed under the connection (asked before each group). */
      removed(): boolean;
      /** A connection to a recreated file, or the error why that is impossible now. */
      recreate(): BetterSqlite3.Database | { error: unknown };
    },
  ) {
    this.use(database);
  }

  private use(database: BetterSqlite3.Database): void {
    this.runAll = database.transaction((group: Operation[]) => group.map((operation) => operation.run())).immediate;
    this.runOne = database.transaction((operation: Operation) => operation.run()).immediate;
  }

  /** Runs `work` inside the next group transaction; resolves after that transaction committed. */
  submit<T>(work: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run: work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.write());
      }
    });
  }

  /** Writes what is queued, then refuses further work. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.submit(() => undefined);
    this.closed = true;
  }

  private write(): void {
    this.scheduled = false;
    const group = this.pending;
    this.pending = [];
    if (group.length === 0) return;
    if (this.failures.removed()) {
      const recreated = this.failures.recreate();
      if ('error' in recreated) {
        // Writing on would go to a file nobody can open again: refuse until the file is back.
        for (const operation of group) operation.reject(this.failures.describe(recreated.error));
        return;
      }
      this.onRollback();
      this.use(recreated);
    }
    let results: unknown[];
    try {
      results = this.runAll(group);
    } catch (error) {
      this.onRollback();
      if (group.length === 1) group[0]!.reject(this.failures.describe(error));
      else this.writeOneByOne(group);
      return;
    }
    for (let index = 0; index < group.length; index += 1) group[index]!.resolve(results[index]);
  }

  private writeOneByOne(group: Operation[]): void {
    for (const operation of group) {
      let result: unknown;
      try {
        result = this.runOne(operation);
      } catch (error) {
        this.onRollback();
        operation.reject(this.failures.describe(error));
        continue;
      }
      operation.resolve(result);
    }
  }
}
