import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEgress, memoryStore, type AnyDestination, type Logger, type PolicyOptions, type Store } from '@egress/core';
import { importOptional } from './optional-import.js';
import { formatTable, progressLine, type DemoIo } from './demo-output.js';
import { demoOrders } from './demo-shop.js';
import { demoSetups, type DemoParticipant } from './demo-participants.js';

export interface DemoOptions {
  /** Orders placed (default 40). */
  orders: number;
  /** Keep the temporary folder (queue, database, objects) and print where it is. */
  keep: boolean;
  /** Print the summary as JSON on stdout. */
  json: boolean;
}

export interface DemoSummary {
  store: string;
  orders: number;
  destinations: Record<string, { delivered: number; failed: number; dead: number; latency: { p50: number; p99: number } | undefined; arrived: Record<string, unknown> }>;
  skipped: Record<string, string>;
  deadLetters: { id: string; destination: string; error: string }[];
  seconds: number;
}

/**
 * Runs the shop workload through every destination whose adapter is installed, against local
 * stand-ins, and reports what arrived where. Progress goes to stderr, the summary to stdout.
 */
export async function runDemo(options: DemoOptions, io: DemoIo): Promise<DemoSummary> {
  const started = performance.now();
  const directory = await mkdtemp(join(tmpdir(), 'egress-demo-'));
  const say = (text: string) => io.stderr.write(`${text}\n`);
  const participants: DemoParticipant[] = [];
  const skipped: Record<string, string> = {};
  let store: Store | undefined;
  try {
    store = await demoStore(directory, say);
    for (const { type, setup } of demoSetups) {
      const loaded = await importOptional(`@egress/${type}`);
      const factory = loaded.ok ? loaded.module[type] : undefined;
      if (typeof factory !== 'function') {
        skipped[type] = loaded.ok ? `@egress/${type} has no "${type}" export` : loaded.message;
        continue;
      }
      participants.push(await setup(factory as (options?: Record<string, unknown>) => AnyDestination, { directory }));
    }
    if (participants.length === 0) throw new Error(`no destination adapter is installed (${Object.values(skipped).join('; ')})`);
    say(`Destinations: ${participants.map((participant) => participant.name).join(', ')}${Object.keys(skipped).length > 0 ? ` (skipped: ${Object.keys(skipped).join(', ')}, not installed)` : ''}`);

    const warnings: string[] = [];
    const egress = createEgress({
      destinations: participants.map((participant) => participant.destination),
      store,
      policies: Object.fromEntries(participants.map((participant) => [participant.name, participant.policy])) as Record<string, PolicyOptions>,
      logger: collectingLogger(warnings),
    });
    const orders = demoOrders(options.orders);
    const expected = orders.length * participants.reduce((sum, participant) => sum + participant.inputs(orders[0]!).length, 0);
    const counts = { delivered: 0, retried: 0, dead: 0 };
    const progress = progressLine(io.stderr, 1000);
    const show = (phase: string) =>
      progress.update(`${phase}  delivered ${counts.delivered}/${expected}  retried ${counts.retried}  dead ${counts.dead}`);
    egress.on('delivered', (event) => {
      counts.delivered += event.eventIds.length;
      show('delivering');
    });
    egress.on('retrying', (event) => {
      counts.retried += event.eventIds.length;
      show('delivering');
    });
    egress.on('dead', (event) => {
      counts.dead += event.eventIds.length;
      show('delivering');
    });

    say(`Placing ${orders.length} orders; each one sends ${expected / orders.length} events in one unit of work...`);
    for (const order of orders) {
      await egress.run((send) => {
        const functions = send as unknown as Record<string, (input: unknown) => unknown>;
        for (const participant of participants) for (const input of participant.inputs(order)) functions[participant.name]!(input);
      });
      show('sending');
      // A trickle rather than a burst, as a real shop would produce.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await egress.flush({ timeout: '40s' });
    progress.done(`done  delivered ${counts.delivered}/${expected}  retried ${counts.retried}  dead ${counts.dead}`);

    const stats = await egress.stats();
    for (const participant of participants) await participant.settle?.(stats.find((entry) => entry.destination === participant.name)?.delivered ?? 0);
    const deadLetters = await egress.deadLetters.list({ limit: 20 });
    const summary: DemoSummary = {
      store: store.kind,
      orders: orders.length,
      destinations: {},
      skipped,
      deadLetters: deadLetters.map((letter) => ({ id: letter.id, destination: letter.destination, error: `${letter.error.name}: ${letter.error.message}` })),
      seconds: 0,
    };
    for (const participant of participants) {
      const entry = stats.find((candidate) => candidate.destination === participant.name);
      summary.destinations[participant.name] = {
        delivered: entry?.delivered ?? 0,
        failed: entry?.failed ?? 0,
        dead: entry?.dead ?? 0,
        latency: entry?.latency ? { p50: entry.latency.p50, p99: entry.latency.p99 } : undefined,
        arrived: await participant.arrived(),
      };
    }
    const descriptions = await Promise.all(participants.map((participant) => participant.describe()));
    await egress.close({ timeout: '5s' });
    store = undefined;
    summary.seconds = Math.round((performance.now() - started) / 100) / 10;

    if (options.json) {
      io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    } else {
      io.stdout.write(`${humanSummary(summary, participants, descriptions)}\n`);
      for (const warning of warnings) io.stdout.write(`warning: ${warning}\n`);
      io.stdout.write(options.keep ? `\nFiles kept in ${directory}\n` : '\nThe temporary files are removed; run with --keep to look at them.\n');
    }
    return summary;
  } finally {
    await Promise.all(participants.map((participant) => participant.close().catch(() => undefined)));
    await store?.close().catch(() => undefined);
    if (!options.keep) await rm(directory, { recursive: true, force: true });
  }
}

async function demoStore(directory: string, say: (text: string) => void): Promise<Store> {
  const loaded = await importOptional('@egress/store-sqlite');
  const factory = loaded.ok ? loaded.module.sqliteStore : undefined;
  if (typeof factory === 'function') {
    const path = join(directory, 'queue.db');
    say(`Queue: SQLite store at ${path}`);
    return (await factory({ path })) as Store;
  }
  say(`Queue: memory store (${loaded.ok ? '@egress/store-sqlite has no sqliteStore export' : '@egress/store-sqlite is not installed'}; events would not survive a crash)`);
  return memoryStore();
}

function humanSummary(summary: DemoSummary, participants: readonly DemoParticipant[], descriptions: readonly string[][]): string {
  const rows = participants.map((participant) => {
    const entry = summary.destinations[participant.name]!;
    return [participant.name, entry.delivered, entry.failed, entry.dead, entry.latency ? `${entry.latency.p50} ms` : '-', entry.latency ? `${entry.latency.p99} ms` : '-'];
  });
  const lines = [
    '',
    `${summary.orders} orders through ${participants.length} destination${participants.length === 1 ? '' : 's'} with the ${summary.store} store in ${summary.seconds} s`,
    '',
    formatTable(['DESTINATION', 'DELIVERED', 'FAILED ATTEMPTS', 'DEAD', 'LATENCY P50', 'P99'], rows),
    '',
    'What arrived where:',
    ...participants.flatMap((participant, index) => descriptions[index]!.map((line, lineIndex) => `${lineIndex === 0 ? `  ${participant.name.padEnd(6)}` : '        '}${line}`)),
  ];
  if (summary.deadLetters.length > 0) {
    lines.push('', 'Dead letters (inspect with `egress dead list`, replay with `egress dead retry`):');
    for (const letter of summary.deadLetters) lines.push(`  ${letter.id}  ${letter.destination}  ${letter.error}`);
  }
  for (const [type, reason] of Object.entries(summary.skipped)) lines.push(`  (${type} skipped: ${reason})`);
  return lines.join('\n');
}

function collectingLogger(warnings: string[]): Logger {
  return { debug() {}, info() {}, warn: (_fields, message) => warnings.push(message), error: (_fields, message) => warnings.push(message) };
}
