import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { jsonOption, type Command } from './command.js';
import { importOptional } from './optional-import.js';
import { UsageError, exitCodes, type CommandIo } from './terminal-output.js';

/** What `@egress/cli` uses of `@egress/demo`; the package is optional, so its types are not imported. */
interface DemoModule {
  demoOptions(values: { orders?: string | undefined; keep?: boolean | undefined; json?: boolean | undefined }): unknown;
  runDemo(options: unknown, io: CommandIo): Promise<{ destinations: Record<string, { delivered: number }> }>;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run a small shop through every destination against local stand-ins (from @egress/demo).',
  usage: '[--orders 40] [--keep] [--json]',
  help: `
Needs no configuration: it starts an HTTP receiver, an SMTP server, an S3-compatible server, a
SQLite database and an SSE stream with a subscriber, all on loopback, then places orders that send
webhooks, receipts by email, event logs to S3, rows to SQL and live updates over SSE, through the
SQLite store. Some webhooks fail once and are retried; one is refused and dead-lettered. It ends
with what arrived where and the delivery latencies.

The stand-ins come in the package @egress/demo, so that @egress/cli installs no test servers. When
it is not installed, the command fetches it with \`npm exec\` and says so (install it with
\`npm install @egress/demo\` to skip that step).

Options:
  --orders <n>   how many orders (default 40)
  --keep         keep the temporary folder (queue, database, objects) and print its path
  --json         the summary as JSON on stdout`,
  options: { ...jsonOption, orders: { type: 'string' }, keep: { type: 'boolean' } },
  async run({ values, io }) {
    const orders = Number(values.orders ?? 40);
    if (!Number.isInteger(orders) || orders < 1 || orders > 10_000) throw new UsageError(`--orders: expected an integer from 1 to 10000, got "${String(values.orders)}"`);
    const loaded = await importOptional('@egress/demo');
    if (!loaded.ok) return fetchAndRunDemo(demoArguments(values), io, loaded.message);
    const demo = loaded.module as unknown as DemoModule;
    const summary = await demo.runDemo(demo.demoOptions({ orders: String(orders), keep: values.keep === true, json: values.json === true }), io);
    const delivered = Object.values(summary.destinations).reduce((sum, entry) => sum + entry.delivered, 0);
    return delivered > 0 ? exitCodes.ok : exitCodes.failure;
  },
};

function demoArguments(values: Record<string, string | boolean | string[] | undefined>): string[] {
  return [...(values.orders === undefined ? [] : ['--orders', String(values.orders)]), ...(values.keep === true ? ['--keep'] : []), ...(values.json === true ? ['--json'] : [])];
}

/**
 * Runs `egress-demo` from `@egress/demo` through `npm exec`, which downloads it once into npm's
 * cache, in a version range this CLI declares (its optional peer dependency on the package).
 */
async function fetchAndRunDemo(argv: readonly string[], io: CommandIo, reason: string): Promise<number> {
  const specifier = `@egress/demo@${await declaredDemoRange()}`;
  io.stderr.write(
    `egress demo: ${reason.startsWith('package @egress/demo is not installed') ? '@egress/demo is not installed' : reason}.\n` +
      `The demo's stand-ins (an S3-compatible server, an SMTP server, SQLite) live in @egress/demo so that @egress/cli stays small.\n` +
      `Fetching ${specifier} with \`npm exec\` (run \`npm install @egress/demo\` to skip this step)...\n`,
  );
  const windows = process.platform === 'win32';
  const child = spawn(windows ? 'npm.cmd' : 'npm', ['exec', '--yes', `--package=${specifier}`, '--', 'egress-demo', ...argv], {
    env: { ...process.env, ...io.environment, npm_config_update_notifier: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
    shell: windows,
  });
  child.stdout.on('data', (chunk: Buffer) => io.stdout.write(chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => io.stderr.write(chunk.toString()));
  return new Promise((resolve) => {
    child.once('error', (error) => {
      io.stderr.write(`egress demo: could not run npm (${error.message}); install the demo with \`npm install @egress/demo\` and run \`npx egress-demo\`\n`);
      resolve(exitCodes.failure);
    });
    child.once('close', (code) => resolve(code ?? exitCodes.failure));
  });
}

async function declaredDemoRange(): Promise<string> {
  // Both from src/ and from dist/, the manifest is one folder up.
  const manifest = JSON.parse(await readFile(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { peerDependencies?: Record<string, string> };
  const range = manifest.peerDependencies?.['@egress/demo'] ?? 'latest';
  // In this repository the manifest still carries pnpm's workspace protocol.
  return range.replace(/^workspace:/, '').replace(/^[\^~*]$/, 'latest');
}
