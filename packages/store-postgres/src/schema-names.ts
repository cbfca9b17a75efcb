import { createHash } from 'node:crypto';

/** Quoted names of everything the store keeps inside its schema. */
export interface SchemaNames {
  readonly schema: string;
  /** Put before the name of every table, sequence and index ('' when the schema is the store's own). */
  readonly prefix: string;
  /** The schema, and the prefix when there is one: what tells one store's tables from another's. */
  readonly scope: string;
  /** The schema as an SQL identifier. */
  readonly quoted: string;
  /** The NOTIFY channel workers listen on. */
  readonly channel: string;
  /** A table's name as the catalog knows it, prefix included, unquoted. */
  relation(name: string): string;
  table(name: string): string;
  sequence(name: string): string;
  /** An index's name, unqualified (an index lives in its table's schema). */
  index(name: string): string;
}

/** Schema names are plain identifiers, short enough that the channel name fits PostgreSQL's 63 bytes. */
export const schemaNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,49}$/;

/** A table prefix is a plain identifier too; with the schema it must leave the channel name within 63 bytes. */
export const tablePrefixPattern = /^[A-Za-z_][A-Za-z0-9_]{0,19}$/;

/** How long the schema and the prefix may be together (the channel is `egress_work:` and both). */
export const maxScopeLength = 50;

export function schemaNames(schema: string, prefix = ''): SchemaNames {
  const quoted = `"${schema}"`;
  const scope = prefix === '' ? schema : `${schema}.${prefix}`;
  return {
    schema,
    prefix,
    scope,
    quoted,
    channel: `egress_work:${scope}`,
    relation: (name) => `${prefix}${name}`,
    table: (name) => `${quoted}."${prefix}${name}"`,
    sequence: (name) => `${quoted}."${prefix}${name}"`,
    index: (name) => `"${prefix}${name}"`,
  };
}

/**
 * First key of the two-key advisory locks the store takes (migrations, partitions): derived from
 * the schema so that stores in different schemas of one database do not wait on each other.
 */
export function advisoryClassId(schema: string): number {
  return createHash('sha256').update(`egress:${schema}`).digest().readInt32BE(0);
}

/** First key of a partition's claim lock: the schema and the destination. */
export function partitionLockClassId(schema: string, destination: string): number {
  return advisoryClassId(`${schema}\n${destination}`);
}

/**
 * A statement text that depends only on the schema names, built once per `SchemaNames` and then
 * reused: the hot statements are sent for every few deliveries.
 */
export function textPerSchema(build: (names: SchemaNames) => string): (names: SchemaNames) => string {
  const built = new WeakMap<SchemaNames, string>();
  return (names) => {
    let text = built.get(names);
    if (text === undefined) built.set(names, (text = build(names)));
    return text;
  };
}
