import { EgressConfigurationError } from '@egress/core';
import type Database from 'better-sqlite3';

/** Checks that `transaction` is the store's own database handle with a transaction open on it. */
export function assertOpenTransaction(transaction: unknown, database: Database.Database | undefined, where: string): asserts transaction is Database.Database {
  if (database === undefined) {
    throw new EgressConfigurationError(
      "the store keeps its queue in a file of its own, so it cannot write through the application's transaction; create it with sqliteStore({ database }) on the application's better-sqlite3 database",
      where,
    );
  }
  if (transaction !== database) {
    throw new EgressConfigurationError("expected the better-sqlite3 database given to sqliteStore({ database }): the queue's tables live there", where);
  }
  if (!database.inTransaction) {
    throw new EgressConfigurationError('expected an open transaction: call egress.runSync inside the function given to db.transaction(...)', where);
  }
}

/** The longest wait between two looks at whether the application's transaction has ended. */
const longestLook = 50;

/**
 * Calls `ended` once the application's transaction on `database` has committed or rolled back.
 * better-sqlite3 has no commit hook; a transaction made with `db.transaction(fn)` ends when `fn`
 * returns, so the first look, after the current turn of the event loop, nearly always finds it
 * ended. One held open across awaits (a manual BEGIN) is looked at again with a growing delay.
 */
export function whenTransactionEnds(database: Database.Database, ended: () => void): void {
  let delay = 1;
  const look = () => {
    if (!database.open || !database.inTransaction) return ended();
    const timer = setTimeout(look, delay);
    timer.unref();
    delay = Math.min(longestLook, delay * 2);
  };
  setImmediate(look).unref();
}
