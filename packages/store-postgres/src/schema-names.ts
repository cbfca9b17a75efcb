import { createHash } from 'node:crypto';

/** Quoted names of everything the store keeps inside its own schema. */
export interface SchemaNames {
  readonly schema: string;
  /** The schema as an SQL identifier. */
  readonly quoted: string;
  /** The NOTIFY channel workers listen on. */
  readonly channel: string;
  table(name: string): string;
  sequence(name: string): string;
}

/** Schema names are plain identifiers, short enough that the channel name fits PostgreSQL's 63 bytes. */
export const schemaNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,49}$/;

export function schemaNames(schema: string): SchemaNames {
  const quoted = `"${schema}"`;
  return {
    schema,
    quoted,
    channel: `egress_work:${schema}`,
    table: (name) => `${quoted}."${name}"`,
    sequence: (name) => `${quoted}."${name}"`,
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
