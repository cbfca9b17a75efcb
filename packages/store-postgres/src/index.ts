export { postgresStore, type PostgresStoreOptions } from './postgres-store.js';
export { SCHEMA_VERSION } from './schema-migrations.js';
export {
  drizzleTransaction,
  knexTransaction,
  kyselyTransaction,
  pgTransaction,
  prismaTransaction,
  type DrizzleTransactionLike,
  type KnexTransactionLike,
  type KyselyTransactionLike,
  type PgQueryable,
  type PostgresTransaction,
  type PrismaTransactionLike,
} from './transaction-adapters.js';
