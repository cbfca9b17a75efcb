// 200,000 events into PostgreSQL through Egress (memory store, the sql destination's default
// policy), beside two baselines run on the same rows in the same process: one knex INSERT per row
// (measured on a subset: it is slow), and PostgreSQL COPY through pg-copy-streams, the fastest
// way in. Egress and COPY alternate for a few rounds and the best round of each counts, so that a
// burst of load on a shared machine does not decide the ratio. Every run writes into its own
// tables, which are dropped afterwards.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createBatchId, createEgress, createEventId, memoryStore, silentLogger, type Batch } from '@egress/core';
import { sql, type SqlPayload } from '@egress/sql';
import knexFactory from 'knex';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';

const url = process.env.EGRESS_BENCH_POSTGRES_URL ?? process.env.EGRESS_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const events = Number(process.env.EVENTS ?? 200_000);
const perRowEvents = Number(process.env.PER_ROW_EVENTS ?? 10_000);
const rounds = Number(process.env.ROUNDS ?? 3);
const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const tables = { egress: `bench_sql_egress_${suffix}`, deliverOnly: `bench_sql_deliver_${suffix}`, perRow: `bench_sql_per_row_${suffix}`, copy: `bench_sql_copy_${suffix}` };
const created = new Set<string>();

const plans = ['free', 'pro', 'team'];
const payloads = Array.from({ length: events }, (_, index) => ({
  index,
  user: `user-${index}`,
  plan: plans[index % 3]!,
  amount: index * 1.5,
  paid: index % 2 === 0,
  day: `2024-05-${String((index % 28) + 1).padStart(2, '0')}`,
}));

// The same columns the destination creates for these payloads, so the baselines write the same rows.
const columns = `"_egress_event_id" uuid PRIMARY KEY, "_egress_sent_at" timestamptz NOT NULL, "index" double precision, "user" text, "plan" text, "amount" double precision, "paid" boolean, "day" date`;
const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 4 } });

async function countRows(table: string): Promise<number> {
  return Number((await knex.raw('SELECT count(*) AS count FROM ??', [table])).rows[0].count);
}

async function throughEgress(): Promise<number> {
  await knex.raw('DROP TABLE IF EXISTS ??', [tables.egress]);
  created.add(tables.egress);
  const egress = createEgress({
    destinations: [sql({ knex: { client: 'pg', connection: url } })],
    store: memoryStore({ maxEvents: events + 1 }),
    logger: silentLogger,
  });
  await egress.ready();
  const started = performance.now();
  for (const payload of payloads) egress.send.sql({ table: tables.egress, payload });
  await egress.flush();
  const elapsed = performance.now() - started;
  const [stats] = await egress.stats();
  await egress.close();
  if (stats!.dead > 0) throw new Error(`${stats!.dead} events were dead-lettered`);
  return elapsed;
}

// The destination alone: the same rows in batches of the default size, handed to deliver() four at
// a time as the engine would, without the engine's validation, queue and bookkeeping. It tells the
// adapter's cost apart from the engine's.
async function deliverOnly(): Promise<number> {
  await knex.raw('DROP TABLE IF EXISTS ??', [tables.deliverOnly]);
  created.add(tables.deliverOnly);
  const destination = sql({ knex: { client: 'pg', connection: url } });
  const batchSize = 5000;
  const batches: Batch<SqlPayload>[] = [];
  for (let offset = 0; offset < events; offset += batchSize) {
    const batchEvents = payloads.slice(offset, offset + batchSize).map((payload) => ({ id: createEventId(), payload: { table: tables.deliverOnly, payload }, attempt: 1, sentAt: Date.now() }));
    batches.push({ id: createBatchId('sql', batchEvents.map((event) => event.id)), destination: 'sql', partition: tables.deliverOnly, attempt: 1, events: batchEvents });
  }
  const context = { signal: new AbortController().signal, logger: silentLogger };
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < batches.length) await destination.deliver(batches[next++]!, context);
    }),
  );
  const elapsed = performance.now() - started;
  await destination.stop?.();
  return elapsed;
}

async function perRowInserts(): Promise<number> {
  created.add(tables.perRow);
  await knex.raw(`CREATE TABLE ?? (${columns})`, [tables.perRow]);
  const started = performance.now();
  for (const payload of payloads.slice(0, perRowEvents)) {
    await knex(tables.perRow).insert({ _egress_event_id: randomUUID(), _egress_sent_at: new Date().toISOString(), ...payload });
  }
  return performance.now() - started;
}

async function copyIn(): Promise<number> {
  await knex.raw('DROP TABLE IF EXISTS ??', [tables.copy]);
  created.add(tables.copy);
  await knex.raw(`CREATE TABLE ?? (${columns})`, [tables.copy]);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const started = performance.now();
  const sentAt = new Date().toISOString();
  // COPY text format: tab-separated, with backslash, tab and newline escaped.
  const escape = (value: string) => value.replace(/[\\\t\n\r]/g, (character) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[character]!);
  function* lines() {
    let chunk = '';
    for (const payload of payloads) {
      chunk += `${randomUUID()}\t${sentAt}\t${payload.index}\t${escape(payload.user)}\t${escape(payload.plan)}\t${payload.amount}\t${payload.paid}\t${payload.day}\n`;
      if (chunk.length > 64 * 1024) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk) yield chunk;
  }
  const sink = client.query(copyStreams.from(`COPY "${tables.copy}" ("_egress_event_id", "_egress_sent_at", "index", "user", "plan", "amount", "paid", "day") FROM STDIN`));
  await pipeline(Readable.from(lines()), sink);
  const elapsed = performance.now() - started;
  await client.end();
  return elapsed;
}

try {
  const egressRounds: number[] = [];
  const copyRounds: number[] = [];
  const deliverRounds: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    egressRounds.push(await throughEgress());
    copyRounds.push(await copyIn());
    deliverRounds.push(await deliverOnly());
  }
  const deliverMs = Math.min(...deliverRounds);
  const perRowMs = await perRowInserts();
  const egressMs = Math.min(...egressRounds);
  const copyMs = Math.min(...copyRounds);
  const counted = { egress: await countRows(tables.egress), deliverOnly: await countRows(tables.deliverOnly), perRow: await countRows(tables.perRow), copy: await countRows(tables.copy) };
  if (counted.egress !== events || counted.deliverOnly !== events || counted.perRow !== perRowEvents || counted.copy !== events) throw new Error(`row counts differ: ${JSON.stringify(counted)}`);
  const rate = (rows: number, milliseconds: number) => Math.round(rows / (milliseconds / 1000));
  const egressResult = { rows: events, milliseconds: Math.round(egressMs), rowsPerSecond: rate(events, egressMs) };
  const deliverOnlyResult = { rows: events, milliseconds: Math.round(deliverMs), rowsPerSecond: rate(events, deliverMs) };
  const perRowInsertResult = { rows: perRowEvents, milliseconds: Math.round(perRowMs), rowsPerSecond: rate(perRowEvents, perRowMs) };
  const copyResult = { rows: events, milliseconds: Math.round(copyMs), rowsPerSecond: rate(events, copyMs) };
  const result = {
    events,
    rounds: { egressMilliseconds: egressRounds.map(Math.round), copyMilliseconds: copyRounds.map(Math.round), deliverOnlyMilliseconds: deliverRounds.map(Math.round) },
    egress: egressResult,
    deliverOnly: deliverOnlyResult,
    perRowInsert: perRowInsertResult,
    copy: copyResult,
    ratios: {
      overPerRowInsert: Number((egressResult.rowsPerSecond / perRowInsertResult.rowsPerSecond).toFixed(2)),
      overCopy: Number((egressResult.rowsPerSecond / copyResult.rowsPerSecond).toFixed(3)),
      deliverOnlyOverCopy: Number((deliverOnlyResult.rowsPerSecond / copyResult.rowsPerSecond).toFixed(3)),
    },
    targets: { overPerRowInsert: 10, overCopy: 1 / 3 },
  };
  console.table({
    [`egress → sql destination (memory store, default policy), best of ${rounds}`]: result.egress,
    [`sql destination deliver() alone, best of ${rounds}`]: result.deliverOnly,
    'knex insert per row (baseline)': result.perRowInsert,
    [`COPY FROM STDIN (baseline), best of ${rounds}`]: result.copy,
  });
  console.log(`egress: ${result.ratios.overPerRowInsert}× one insert per row (target ≥ 10×), ${(result.ratios.overCopy * 100).toFixed(1)} % of COPY (target ≥ 33.3 %)`);
  console.log(`the destination's deliver() alone: ${(result.ratios.deliverOnlyOverCopy * 100).toFixed(1)} % of COPY`);
  writeFileSync(new URL('./results/sql.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  for (const table of created) await knex.raw('DROP TABLE IF EXISTS ??', [table]);
  await knex.destroy();
}
