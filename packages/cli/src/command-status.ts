import type { DestinationStats } from '@egress/core';
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
    const { egress } = await openEngine(values.config, io, 'producer', 'store');
    try {
      const print = async () => {
        const stats = await egress.stats();
        if (values.json) io.stdout.write(`${JSON.stringify(stats, null, values.watch ? 0 : 2)}\n`);
        else io.stdout.write(`${values.watch && io.stdout.isTTY ? '\u001b[2J\u001b[H' : ''}${statusTable(stats)}\n${values.watch ? `\n(every ${interval}s, Ctrl-C to stop)\n` : ''}`);
      };
      await print();
      if (!values.watch) return exitCodes.ok;
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
    rows.push([destination.destination, destination.partitions.length > 1 ? '(all)' : partitionLabel(destination.partitions[0]?.partition), destination.waiting, destination.inFlight, destination.delivered, destination.failed, destination.dead, age]);
    if (destination.partitions.length > 1) {
      for (const partition of destination.partitions) {
        rows.push(['', partitionLabel(partition.partition), partition.waiting, partition.inFlight, partition.delivered, partition.failed, partition.dead, partition.oldestAge === undefined ? '-' : formatAge(partition.oldestAge)]);
      }
    }
  }
  return formatTable(['DESTINATION', 'PARTITION', 'WAITING', 'IN FLIGHT', 'DELIVERED', 'FAILED', 'DEAD', 'OLDEST'], rows);
}

/** Destinations that do not partition put every event in the partition named ''. */
export function partitionLabel(partition: string | undefined): string {
  return partition === undefined || partition === '' ? '-' : partition;
}
