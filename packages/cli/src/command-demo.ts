import { jsonOption, type Command } from './command.js';
import { runDemo } from './demo/run-demo.js';
import { UsageError, exitCodes } from './terminal-output.js';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run a small shop through every installed destination against local stand-ins.',
  usage: '[--orders 40] [--keep] [--json]',
  help: `
Needs no configuration and no network: it starts an HTTP receiver, an SMTP server, an S3-compatible
server, a SQLite database and an SSE stream with a subscriber, all on loopback, then places orders
that send webhooks, receipts by email, event logs to S3, rows to SQL and live updates over SSE,
through the SQLite store. Some webhooks fail once and are retried; one is refused and dead-lettered.
It ends with what arrived where and the delivery latencies.

Only destinations whose adapter package is installed take part.

Options:
  --orders <n>   how many orders (default 40)
  --keep         keep the temporary folder (queue, database, objects) and print its path
  --json         the summary as JSON on stdout`,
  options: { ...jsonOption, orders: { type: 'string' }, keep: { type: 'boolean' } },
  async run({ values, io }) {
    const orders = Number(values.orders ?? 40);
    if (!Number.isInteger(orders) || orders < 1 || orders > 10_000) throw new UsageError(`--orders: expected an integer from 1 to 10000, got "${String(values.orders)}"`);
    const summary = await runDemo({ orders, keep: values.keep === true, json: values.json === true }, io);
    const delivered = Object.values(summary.destinations).reduce((sum, entry) => sum + entry.delivered, 0);
    return delivered > 0 ? exitCodes.ok : exitCodes.failure;
  },
};
