import { EgressStoreUnavailableError, type DestinationStats, type EgressStoreStatus } from '@egress/core';
import { configOption, jsonOption, type Command } from './command.js';
import { openEngine } from './open-config.js';
import { UsageError, exitCodes, formatAge, formatTable } from './terminal-output.js';

export const statusCommand: Command = {
  name: 'status',
  summary: 'Show the queue per destination and partition: waiting, in flight, delivered, failed, dead, oldest age.',
  usage: '[-c file] [--json] [--watch] [--interval 2s]',
  help: `
Reads the configured store without delivering anything, so it is safe beside running workers. It
needs only the store: the destinations' own options and secrets (\${env:NAME}) need not be set.

Columns: WAITING events queued (retries included), IN FLIGHT leased to a worker, DELIVERED events
delivered and FAILED failed attempts (each retry and each dead-lettering), as the store recorded them
for every worker that shares it, DEAD dead letters, OLDEST how long the oldest queued event has waited.
A last line tells where the store stands: connected, or unreachable since when and why, with the
events in its local spool (PostgreSQL with a spool). While the store is unreachable only that line
is printed (with --json: {"store": ...}) and the exit code is 1.

Options:
  -c, --config <file>   config file (default: egress.config.yaml in the working directory)
  --json                one JSON document (with --watch: one per line)
  --watch               refresh until interrupted (Ctrl-C)
  --interval <seconds>  refresh period for --watch (default 2)

Examples:
  egress status
  egress status --json | jq '.[] | select(.dead > 0) | .destination'
  egress status --watch --interval 5`,
  options: { ...configOption, ...jsonOption, watch: { type: 'boolean' }, interval: { type: 'string' } },
  async run({ values, io }) {
    const interval = Number(values.interval ?? 2);
    if (!Number.isFinite(interval) || interval <= 0) throw new UsageError(`--interval: expected a number of seconds, got "${String(values.interval)}"`);
    const { egress } = await openEngine(values.config, io, 'producer', 'store', { waitForStore: false });
    try {
      /** Prints once; false when the store could not be reached. */
      const print = async (): Promise<boolean> => {
        let stats: DestinationStats[] | undefined;
        try {
          stats = await egress.stats();
        } catch (error) {
          if (!EgressStoreUnavailableError.isInstance(error)) throw error;
        }
        const store = egress.storeStatus();
        const indent = values.watch ? 0 : 2;
        const clear = values.watch && io.stdout.isTTY ? '\u001b[2J\u001b[H' : '';
        const footer = values.watch ? `\n(every ${interval}s, Ctrl-C to stop)\n` : '';
        if (values.json) {
          // The array stays what stats() returns; each entry also carries the store's status.
          const document = stats ? stats.map((entry) => ({ ...entry, store })) : { store };
          io.stdout.write(`${JSON.stringify(document, null, indent)}\n`);
        } else {
          io.stdout.write(`${clear}${stats ? `${statusTable(stats)}\n` : ''}${storeLine(store, Date.now())}\n${footer}`);
        }
        return stats !== undefined;
      };
      const reached = await print();
      if (!values.watch) return reached ? exitCodes.ok : exitCodes.failure;
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => void print().catch(() => undefined), interval * 1000);
        const stop = () => {
          clearInterval(timer);
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      return exitCodes.ok;
    } finally {
      await egress.close({ timeout: 1000 });
    }
  },
};

/** One row per destination, then one per partition under it when a destination has several. */
export function statusTable(stats: readonly DestinationStats[]): string {
  const rows: (string | number)[][] = [];
  for (const destination of stats) {
    const age = destination.oldestAge === undefined ? '-' : formatAge(destination.oldestAge);
    rows.push([destination.destination, destination.partitions.length > 1 ? '(all)' : stateLabel(destination.partitions[0]), destination.waiting, destination.inFlight, destination.delivered, destination.failed, destination.dead, age]);
    if (destination.partitions.length > 1) {
      for (const partition of destination.partitions) {
        rows.push(['', stateLabel(partition), partition.waiting, partition.inFlight, partition.delivered, partition.failed, partition.dead, partition.oldestAge === undefined ? '-' : formatAge(partition.oldestAge)]);
      }
    }
  }
  return formatTable(['DESTINATION', 'PARTITION', 'WAITING', 'IN FLIGHT', 'DELIVERED', 'FAILED', 'DEAD', 'OLDEST'], rows);
}

/** Where the store stands, in one line: `store: postgres unreachable for 12s (since ...): why; 40 events spooled`. */
export function storeLine(status: EgressStoreStatus, now: number): string {
  const since = new Date(status.since).toISOString();
  let line = `store: ${status.kind} ${status.state}`;
  if (status.state === 'connected') line += ` since ${since}`;
  else line += ` for ${formatAge(Math.max(0, now - status.since))} (since ${since})`;
  if (status.error) line += `: ${status.error}`;
  const waiting: string[] = [];
  if (status.buffered > 0) waiting.push(`${status.buffered} event${status.buffered === 1 ? '' : 's'} buffered in this process`);
  if (status.spooled !== undefined) waiting.push(`${status.spooled} event${status.spooled === 1 ? '' : 's'} in the local spool`);
  return waiting.length > 0 ? `${line}; ${waiting.join(', ')}` : line;
}

/** A partition's name, and its state while it is paused or disabled. */
function stateLabel(partition: { partition: string; state?: string } | undefined): string {
  const label = partitionLabel(partition?.partition);
  return partition?.state ? `${label} (${partition.state})` : label;
}

/** Destinations that do not partition put every event in the partition named ''. */
export function partitionLabel(partition: string | undefined): string {
  return partition === undefined || partition === '' ? '-' : partition;
}
