import { EgressConfigurationError } from '@egress/core';
import { drizzle } from 'drizzle-orm/node-postgres';
import knex from 'knex';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { drizzleTransaction, knexTransaction, kyselyTransaction, pgTransaction, prismaTransaction } from '../../src/index.js';
import { postgresUrl, randomSchema, dropSchemas } from '../postgres-test-schema.js';
import { outboxEgress } from './outbox-harness.js';

const connectionString = postgresUrl ?? 'postgres://127.0.0.1:1/none';
// Nothing below connects except the last test: the wrappers judge the objects they are given.
const pool = new pg.Pool({ connectionString });
const knexDatabase = knex({ client: 'pg', connection: connectionString });
const kyselyDatabase = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool }) });
const drizzleDatabase = drizzle(pool);
const schemas: string[] = [];

afterAll(async () => {
  await knexDatabase.destroy();
  await kyselyDatabase.destroy();
  if (postgresUrl) await dropSchemas(schemas);
});

function refusal(make: () => unknown): string {
  try {
    make();
  } catch (error) {
    expect(EgressConfigurationError.isInstance(error)).toBe(true);
    return (error as Error).message;
  }
  throw new Error('expected the wrapper to refuse');
}

describe('transaction wrappers refuse what would run outside the transaction', () => {
  test('the pool instead of its client, and things that cannot run a query', () => {
    expect(refusal(() => pgTransaction(pool))).toContain('pgTransaction(client): expected a client from pool.connect(), got the pool');
    expect(refusal(() => pgTransaction({} as pg.PoolClient))).toContain('on which BEGIN was run, got an object that is not one');
    expect(refusal(() => pgTransaction(undefined as unknown as pg.PoolClient))).toContain('got undefined');
  });

  test('the knex, Kysely and Drizzle instances instead of their transactions', () => {
    expect(refusal(() => knexTransaction(knexDatabase as never))).toContain('not the knex instance');
    expect(refusal(() => kyselyTransaction(kyselyDatabase as never))).toContain('not the Kysely instance');
    expect(refusal(() => drizzleTransaction(drizzleDatabase as never))).toContain('not the database');
  });

  test('a Prisma client instead of its interactive transaction', () => {
    const client = { $executeRawUnsafe: async () => 0, $disconnect: async () => {}, $transaction: async () => {} };
    expect(refusal(() => prismaTransaction(client))).toContain('not the PrismaClient');
    expect(prismaTransaction({ $executeRawUnsafe: async () => 0 }).library).toBe('prisma');
  });

  test.skipIf(!postgresUrl)('run() takes only a wrapped transaction, and says which wrappers exist', async () => {
    const schema = randomSchema();
    schemas.push(schema);
    const egress = outboxEgress({ connectionString, schema, sinkUrl: 'http://127.0.0.1:1/', role: 'producer' });
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await expect(egress.run((send) => void send.orders({ order: 1 }), { transaction: client })).rejects.toThrow(/pgTransaction\(client\), knexTransaction\(trx\)/);
      await client.query('ROLLBACK');
    } finally {
      client.release();
      await egress.close();
    }
  });
});
