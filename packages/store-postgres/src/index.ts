export { postgresStore, type PostgresStoreOptions } from './postgres-store.js';
export { SCHEMA_VERSION } from './schema-migrations.js';
