// The five ways an application talks to PostgreSQL, each reduced to what the outbox tests need:
// one transaction that inserts an order row and hands the transaction to Egress, committed when
// the work resolves and rolled back when it throws.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sql as drizzleSql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import knex from 'knex';
import { Kysely, PostgresDialect, sql as kyselySql } from 'kysely';
import pg from 'pg';
import { drizzleTransaction, knexTransaction, kyselyTransaction, pgTransaction, prismaTransaction, type PostgresTransaction } from '../../src/index.js';

export const libraryNames = ['pg', 'knex', 'kysely', 'drizzle', 'prisma'] as const;
export type LibraryName = (typeof libraryNames)[number];

export interface ApplicationDatabase {
  /**
   * Runs `work` in one transaction of the application: `insertOrder` writes a row of the
   * application's `orders` table through it. Commits when `work` resolves, rolls back when it throws.
   */
  transaction(work: (transaction: PostgresTransaction, insertOrder: (id: number) => Promise<void>) => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

/** Creates the application's own table, in its own schema. */
export async function createApplicationSchema(connectionString: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA "${schema}"`);
    await client.query(`CREATE TABLE "${schema}".orders (id integer PRIMARY KEY, total integer NOT NULL)`);
  } finally {
    await client.end();
  }
}

export async function openApplicationDatabase(library: LibraryName, connectionString: string, schema: string): Promise<ApplicationDatabase> {
  // Every library's connections see the application's schema first, as an application's would.
  const searchPath = `-c search_path="${schema}"`;
  switch (library) {
    case 'pg': {
      const pool = new pg.Pool({ connectionString, options: searchPath, max: 10 });
      return {
        async transaction(work) {
          const client = await pool.connect();
          try {
            await client.query('BEGIN');
            await work(pgTransaction(client), async (id) => void (await client.query('INSERT INTO orders (id, total) VALUES ($1, $2)', [id, id * 10])));
            await client.query('COMMIT');
          } catch (error) {
            await client.query('ROLLBACK');
            throw error;
          } finally {
            client.release();
          }
        },
        close: () => pool.end(),
      };
    }
    case 'knex': {
      const database = knex({ client: 'pg', connection: { connectionString, options: searchPath }, pool: { min: 0, max: 10 } });
      return {
        transaction: (work) =>
          database.transaction(async (trx) => {
            await work(knexTransaction(trx), async (id) => void (await trx('orders').insert({ id, total: id * 10 })));
          }),
        close: () => database.destroy(),
      };
    }
    case 'kysely': {
      const database = new Kysely<{ orders: { id: number; total: number } }>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString, options: searchPath, max: 10 }) }) });
      return {
        transaction: (work) =>
          database.transaction().execute(async (trx) => {
            await work(kyselyTransaction(trx), async (id) => void (await trx.insertInto('orders').values({ id, total: id * 10 }).execute()));
            // A statement through Kysely's own template after Egress wrote: the connection is still the transaction's.
            await kyselySql`SELECT 1`.execute(trx);
          }),
        close: () => database.destroy(),
      };
    }
    case 'drizzle': {
      const pool = new pg.Pool({ connectionString, options: searchPath, max: 10 });
      const database = drizzle(pool);
      return {
        transaction: (work) =>
          database.transaction(async (tx) => {
            await work(drizzleTransaction(tx), async (id) => void (await tx.execute(drizzleSql`INSERT INTO orders (id, total) VALUES (${id}, ${id * 10})`)));
          }),
        close: () => pool.end(),
      };
    }
    case 'prisma': {
      const { PrismaClient, PrismaPg } = await loadPrisma();
      const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString, max: 10 }, { schema }) });
      return {
        transaction: (work) =>
          prisma.$transaction(
            async (tx: PrismaTransactionClient) => {
              await work(prismaTransaction(tx), async (id) => void (await tx.order.create({ data: { id, total: id * 10 } })));
            },
            { timeout: 60_000, maxWait: 60_000 },
          ),
        close: () => prisma.$disconnect(),
      };
    }
  }
}

interface PrismaTransactionClient {
  $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number>;
  order: { create(arguments_: { data: { id: number; total: number } }): Promise<unknown> };
}

interface PrismaModule {
  PrismaClient: new (options: { adapter: unknown }) => {
    $transaction<T>(work: (tx: PrismaTransactionClient) => Promise<T>, options?: { timeout?: number; maxWait?: number }): Promise<T>;
    $disconnect(): Promise<void>;
  };
  PrismaPg: new (config: pg.PoolConfig, options: { schema: string }) => unknown;
}

const here = dirname(fileURLToPath(import.meta.url));
const prismaSchema = join(here, 'prisma', 'schema.prisma');
const generatedClient = join(here, 'prisma', 'generated', 'client.ts');

/**
 * Prisma's client is generated from the test's schema the first time. Generating needs no engine
 * binary (Prisma 7 with a driver adapter runs its query compiler from npm as WebAssembly); the CLI
 * only checks that a schema engine exists, so it is pointed at a stand-in it never runs.
 */
async function loadPrisma(): Promise<PrismaModule> {
  if (!existsSync(generatedClient)) {
    const cli = createRequire(import.meta.url).resolve('prisma/build/index.js');
    execFileSync(process.execPath, [cli, 'generate', '--schema', prismaSchema], {
      env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
      stdio: 'pipe',
    });
  }
  const [{ PrismaClient }, { PrismaPg }] = await Promise.all([import(pathToFileURL(generatedClient).href), import('@prisma/adapter-pg')]);
  return { PrismaClient, PrismaPg } as PrismaModule;
}
