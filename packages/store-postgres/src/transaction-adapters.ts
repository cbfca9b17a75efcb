import { randomUUID } from 'node:crypto';
import { EgressConfigurationError } from '@egress/core';

const transactionBrand = Symbol.for('egress.postgresTransaction');

/**
 * The application's open PostgreSQL transaction, seen through the one thing the store needs from
 * its library: running a statement with `$1`-style parameters. Made by `pgTransaction`,
 * `knexTransaction`, `kyselyTransaction`, `drizzleTransaction` or `prismaTransaction`; pass it to
 * `egress.run(fn, { transaction })`. None of these libraries is a dependency of this package.
 */
export interface PostgresTransaction {
  /** The library the transaction came from, for error messages. */
  readonly library: string;
  /** Runs one statement inside the application's transaction. */
  query(text: string, values: readonly unknown[]): Promise<unknown>;
  readonly [transactionBrand]: true;
}

export function isPostgresTransaction(value: unknown): value is PostgresTransaction {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[transactionBrand] === true;
}

function adapter(library: string, query: PostgresTransaction['query']): PostgresTransaction {
  return Object.freeze({ library, query, [transactionBrand]: true as const });
}

function refuse(factory: string, expected: string, value: unknown): never {
  const got = value === null ? 'null' : typeof value === 'function' || typeof value === 'object' ? `${typeof value === 'function' ? 'a function' : 'an object'} that is not one` : typeof value;
  throw new EgressConfigurationError(`expected ${expected}, got ${got}`, `[postgres] ${factory}`);
}

function method(value: unknown, name: string): ((...parameters: unknown[]) => unknown) | undefined {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return undefined;
  const found = (value as Record<string, unknown>)[name];
  return typeof found === 'function' ? (found as (...parameters: unknown[]) => unknown).bind(value) : undefined;
}

/** The minimal shape of a node-postgres client (`pg.Client`, or `pg.PoolClient` from `pool.connect()`). */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/**
 * A node-postgres client on which the application ran `BEGIN` and has not yet committed. The
 * client must be the one the transaction runs on: a pool would run the statement on any connection.
 */
export function pgTransaction(client: PgQueryable): PostgresTransaction {
  const query = method(client, 'query');
  if (!query) refuse('pgTransaction(client)', 'a pg client with query() (from pool.connect(), or a pg.Client) on which BEGIN was run', client);
  if ('idleCount' in (client as object) && 'totalCount' in (client as object)) {
    throw new EgressConfigurationError('expected a client from pool.connect(), got the pool: a pool runs each statement on any connection, outside the transaction', '[postgres] pgTransaction(client)');
  }
  return adapter('pg', (text, values) => query(text, [...values]) as Promise<unknown>);
}

/** The minimal shape of a knex transaction (`trx` in `knex.transaction(async (trx) => ...)`). */
export interface KnexTransactionLike {
  raw(sql: string, bindings: never): PromiseLike<unknown>;
  readonly isTransaction?: boolean;
}

/** A knex transaction: the `trx` of `knex.transaction(async (trx) => ...)`. */
export function knexTransaction(trx: KnexTransactionLike): PostgresTransaction {
  const raw = method(trx, 'raw');
  if (!raw || (trx as { isTransaction?: unknown }).isTransaction !== true) {
    refuse('knexTransaction(trx)', 'the trx of knex.transaction(async (trx) => ...), not the knex instance', trx);
  }
  return adapter('knex', async (text, values) => {
    // knex takes `?` placeholders in the order the values appear.
    const bindings: unknown[] = [];
    const positional = text.replace(/\$(\d+)/g, (_match, position: string) => {
      bindings.push(values[Number(position) - 1]);
      return '?';
    });
    return raw(positional, bindings);
  });
}

/** The minimal shape of a Kysely transaction (`trx` in `db.transaction().execute(async (trx) => ...)`). */
export interface KyselyTransactionLike {
  /** Takes Kysely's `CompiledQuery`; typed loosely so that no Kysely version is named here. */
  executeQuery(query: never): PromiseLike<unknown>;
  readonly isTransaction: boolean;
}

/** A Kysely transaction: the `trx` of `db.transaction().execute(async (trx) => ...)`. */
export function kyselyTransaction(trx: KyselyTransactionLike): PostgresTransaction {
  const executeQuery = method(trx, 'executeQuery');
  if (!executeQuery || (trx as { isTransaction?: unknown }).isTransaction !== true) {
    refuse('kyselyTransaction(trx)', 'the trx of db.transaction().execute(async (trx) => ...), not the Kysely instance', trx);
  }
  return adapter('kysely', (text, values) =>
    // The shape of Kysely's `CompiledQuery.raw(text, values)`.
    executeQuery({ sql: text, parameters: values, query: { kind: 'RawNode', sqlFragments: [text], parameters: [] }, queryId: { queryId: randomUUID() } }) as Promise<unknown>,
  );
}

/** The minimal shape of a Drizzle transaction (`tx` in `db.transaction(async (tx) => ...)`). */
export interface DrizzleTransactionLike {
  /** Takes Drizzle's `SQL`; typed loosely so that no Drizzle version is named here. */
  execute(query: never): PromiseLike<unknown>;
  rollback(): unknown;
}

/** A Drizzle transaction on PostgreSQL: the `tx` of `db.transaction(async (tx) => ...)`. */
export function drizzleTransaction(tx: DrizzleTransactionLike): PostgresTransaction {
  const execute = method(tx, 'execute');
  if (!execute || !method(tx, 'rollback')) refuse('drizzleTransaction(tx)', 'the tx of db.transaction(async (tx) => ...), not the database', tx);
  return adapter('drizzle', async (text, values) => {
    // What Drizzle asks of a query: an SQL wrapper that renders to text and parameters.
    const statement = { toQuery: () => ({ sql: text, params: [...values] }) };
    return execute({ getSQL: () => statement });
  });
}

/** The minimal shape of a Prisma interactive transaction client (`tx` in `prisma.$transaction(async (tx) => ...)`). */
export interface PrismaTransactionLike {
  $executeRawUnsafe(query: string, ...values: never[]): PromiseLike<number>;
}

/**
 * A Prisma interactive transaction: the `tx` of `prisma.$transaction(async (tx) => ...)`. The
 * client itself is refused: each of its statements is a transaction of its own.
 */
export function prismaTransaction(tx: PrismaTransactionLike): PostgresTransaction {
  const execute = method(tx, '$executeRawUnsafe');
  // The interactive transaction client lacks `$disconnect` (Prisma's ITXClientDenyList); the client has it.
  if (!execute || method(tx, '$disconnect')) refuse('prismaTransaction(tx)', 'the tx of prisma.$transaction(async (tx) => ...), not the PrismaClient', tx);
  return adapter('prisma', async (text, values) => execute(text, ...values));
}
