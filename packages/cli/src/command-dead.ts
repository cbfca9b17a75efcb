import type { DeadLetter, Egress } from '@egress/core';
import { configOption, jsonOption, type Command, type CommandContext } from './command.js';
import { partitionLabel } from './command-status.js';
import { withProducerEngine } from './open-config.js';
import { UsageError, confirm, exitCodes, formatAge, formatTable} from './terminal-output.js';

const destinationOption = { destination: { type: 'string', short: 'd' } } as const;

export const deadListCommand: Command = {
  name: 'dead list',
  summary: 'List dead letters: events that failed permanently or ran out of retries.',
  usage: '[-c file] [-d destination] [--limit n] [--json]',
  help: `
Options:
  -c, --config <file>        config file (default: egress.config.yaml)
  -d, --destination <name>   only this destination
  --limit <n>                at most n, oldest first (default 100)
  --json                     a JSON array with redacted payloads and errors`,
  options: { ...configOption, ...jsonOption, ...destinationOption, limit: { type: 'string' } },
  async run({ values, io }) {
    const limit = Number(values.limit ?? 100);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit: expected a positive integer, got "${String(values.limit)}"`);
    return withProducerEngine(values.config, io, async (egress) => {
      const letters = await egress.deadLetters.list({ destination: stringOption(values.destination), limit });
      if (values.json) {
        io.stdout.write(`${JSON.stringify(letters, null, 2)}\n`);
        return exitCodes.ok;
      }
      if (letters.length === 0) {
        io.stdout.write('No dead letters.\n');
        return exitCodes.ok;
      }
      const now = Date.now();
      io.stdout.write(
        `${formatTable(
          ['ID', 'DESTINATION', 'PARTITION', 'ATTEMPTS', 'DEAD FOR', 'ERROR'],
          letters.map((letter) => [letter.id, letter.destination, partitionLabel(letter.partition), letter.attempts, formatAge(now - letter.deadAt), truncate(`${letter.error.name}: ${letter.error.message}`, 80)]),
        )}\n`,
      );
      if (letters.length === limit) io.stdout.write(`(first ${limit}; use --limit for more)\n`);
      return exitCodes.ok;
    });
  },
};

export const deadShowCommand: Command = {
  name: 'dead show',
  summary: 'Show one dead letter: its payload (secrets redacted), attempts and last error.',
  usage: '<id> [-c file] [--json]',
  help: `
Options:
  -c, --config <file>   config file (default: egress.config.yaml)
  --json                the dead letter as JSON`,
  options: { ...configOption, ...jsonOption },
  positionals: true,
  async run({ values, positionals, io }) {
    const [id, ...extra] = positionals;
    if (id === undefined || extra.length > 0) throw new UsageError('expected exactly one dead letter id');
    return withProducerEngine(values.config, io, async (egress) => {
      const letter = await findDeadLetter(egress, id);
      if (letter === undefined) {
        io.stderr.write(`egress dead show: no dead letter with id ${id}\n`);
        return exitCodes.failure;
      }
      if (values.json) {
        io.stdout.write(`${JSON.stringify(letter, null, 2)}\n`);
        return exitCodes.ok;
      }
      io.stdout.write(
        [
          `id           ${letter.id}`,
          `destination  ${letter.destination}`,
          `partition    ${partitionLabel(letter.partition)}`,
          `sent at      ${new Date(letter.sentAt).toISOString()}`,
          `dead at      ${new Date(letter.deadAt).toISOString()} (after ${letter.attempts} attempt${letter.attempts === 1 ? '' : 's'})`,
          `error        ${letter.error.name}: ${letter.error.message}`,
          'payload',
          JSON.stringify(letter.payload, null, 2).replace(/^/gm, '  '),
          '',
        ].join('\n'),
      );
      return exitCodes.ok;
    });
  },
};

export const deadRetryCommand: Command = {
  name: 'dead retry',
  summary: 'Put dead letters back in the queue, with their attempts reset.',
  usage: '<ids...> | --all [-d destination] [-c file] [--json]',
  help: `
A running worker picks them up at once; without one they wait in the store for the next.

Options:
  -c, --config <file>        config file (default: egress.config.yaml)
  --all                      every dead letter (of --destination, if given)
  -d, --destination <name>   with --all: only this destination
  --json                     print {"retried": n}

Examples:
  egress dead retry 01936f4e-8a52-7c1e-9d0a-2b1f3c4d5e6f
  egress dead retry --all --destination webhooks`,
  options: { ...configOption, ...jsonOption, ...destinationOption, all: { type: 'boolean' } },
  positionals: true,
  async run(context) {
    const ids = selection(context);
    return withProducerEngine(context.values.config, context.io, async (egress) => {
      const unknown = ids === undefined ? [] : await unknownIds(egress, ids);
      const retried = await egress.deadLetters.retry(ids, { destination: stringOption(context.values.destination) });
      for (const id of unknown) context.io.stderr.write(`egress dead retry: no dead letter with id ${id}\n`);
      report(context, { retried }, `${retried} dead letter${retried === 1 ? '' : 's'} back in the queue.`);
      return ids !== undefined && retried < ids.length ? exitCodes.failure : exitCodes.ok;
    });
  },
};

export const deadPurgeCommand: Command = {
  name: 'dead purge',
  summary: 'Delete dead letters for good.',
  usage: '<ids...> | --all [-d destination] [--yes] [-c file] [--json]',
  help: `
Purging more than one dead letter asks for confirmation on a terminal; --yes skips the question.
Without a terminal (scripts, CI) a bulk purge is refused unless --yes is given.

Options:
  -c, --config <file>        config file (default: egress.config.yaml)
  --all                      every dead letter (of --destination, if given)
  -d, --destination <name>   with --all: only this destination
  -y, --yes                  do not ask
  --json                     print {"purged": n}`,
  options: { ...configOption, ...jsonOption, ...destinationOption, all: { type: 'boolean' }, yes: { type: 'boolean', short: 'y' } },
  positionals: true,
  async run(context) {
    const { values, io } = context;
    const ids = selection(context);
    return withProducerEngine(values.config, io, async (egress) => {
      const destination = stringOption(values.destination);
      const count = ids?.length ?? (await countDead(egress, destination));
      if (count === 0) {
        report(context, { purged: 0 }, 'No dead letters to purge.');
        return exitCodes.ok;
      }
      if (count > 1 && !values.yes) {
        const what = `${count} dead letters${destination ? ` of ${destination}` : ''}`;
        if (!io.stdin.isTTY) {
          io.stderr.write(`egress dead purge: refusing to purge ${what} without --yes (no terminal to confirm on)\n`);
          return exitCodes.usage;
        }
        if (!(await confirm(io, `Purge ${what}? This cannot be undone.`))) {
          io.stderr.write('Nothing purged.\n');
          return exitCodes.failure;
        }
      }
      const unknown = ids === undefined ? [] : await unknownIds(egress, ids);
      const purged = await egress.deadLetters.purge(ids, { destination });
      for (const id of unknown) io.stderr.write(`egress dead purge: no dead letter with id ${id}\n`);
      report(context, { purged }, `${purged} dead letter${purged === 1 ? '' : 's'} purged.`);
      return ids !== undefined && purged < ids.length ? exitCodes.failure : exitCodes.ok;
    });
  },
};


/** Ids given as arguments, or undefined for `--all`; one of the two is required. */
function selection({ values, positionals }: CommandContext): string[] | undefined {
  if (values.all && positionals.length > 0) throw new UsageError('give ids or --all, not both');
  if (!values.all && positionals.length === 0) throw new UsageError('expected dead letter ids, or --all');
  if (!values.all && values.destination !== undefined) throw new UsageError('--destination only applies with --all');
  return values.all ? undefined : positionals;
}

function report({ values, io }: CommandContext, data: Record<string, number>, text: string): void {
  io.stdout.write(values.json ? `${JSON.stringify(data)}\n` : `${text}\n`);
}

/** Pages through the dead letters (there may be many), showing progress on long lists. */
async function findDeadLetter(egress: Egress, id: string): Promise<DeadLetter | undefined> {
  let after: string | undefined;
  for (;;) {
    const page = await egress.deadLetters.list({ limit: 1000, ...(after === undefined ? {} : { after }) });
    const found = page.find((letter) => letter.id === id);
    if (found !== undefined || page.length < 1000) return found;
    after = page.at(-1)!.id;
  }
}

/** The ids among `ids` that name no dead letter, in the order given (one pass over the list). */
async function unknownIds(egress: Egress, ids: readonly string[]): Promise<string[]> {
  const wanted = new Set(ids);
  let after: string | undefined;
  for (;;) {
    const page = await egress.deadLetters.list({ limit: 1000, ...(after === undefined ? {} : { after }) });
    for (const letter of page) wanted.delete(letter.id);
    if (wanted.size === 0 || page.length < 1000) return ids.filter((id) => wanted.has(id));
    after = page.at(-1)!.id;
  }
}

async function countDead(egress: Egress, destination: string | undefined): Promise<number> {
  const stats = await egress.stats();
  return stats.filter((entry) => destination === undefined || entry.destination === destination).reduce((sum, entry) => sum + entry.dead, 0);
}

function stringOption(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function truncate(text: string, length: number): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length > length ? `${line.slice(0, length - 1)}…` : line;
}

