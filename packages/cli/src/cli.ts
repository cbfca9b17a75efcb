import { parseArgs } from 'node:util';
import { EgressConfigurationError } from '@egress/core';
import { deadListCommand, deadPurgeCommand, deadRetryCommand, deadShowCommand } from './command-dead.js';
import { demoCommand } from './command-demo.js';
import { disableCommand, enableCommand, partitionsCommand } from './command-partitions.js';
import { statusCommand } from './command-status.js';
import { tailCommand } from './command-tail.js';
import { validateCommand } from './command-validate.js';
import { workerCommand } from './command-worker.js';
import type { Command, CommandContext } from './command.js';
import { ConfigFailure } from './open-config.js';
import { UsageError, exitCodes, processIo, redactingIo, type CommandIo } from './terminal-output.js';

const commands: Command[] = [
  workerCommand,
  statusCommand,
  deadListCommand,
  deadShowCommand,
  deadRetryCommand,
  deadPurgeCommand,
  partitionsCommand,
  enableCommand,
  disableCommand,
  validateCommand,
  tailCommand,
  demoCommand,
];

const exitCodeHelp = `Exit codes: 0 success, 1 failure (e.g. a delivery or connection failed), 2 usage or configuration error.`;

function overview(): string {
  const width = Math.max(...commands.map((command) => command.name.length));
  return [
    'egress: deliver events from Node.js to HTTP, email, S3, SQL and SSE, durably and in batches.',
    '',
    'Usage: egress <command> [options]',
    '',
    'Commands:',
    ...commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    '',
    'Run `egress <command> --help` for the options of a command.',
    'The config file is egress.config.yaml (or .yml, .json, .mjs) in the working directory unless -c names one.',
    exitCodeHelp,
    '',
  ].join('\n');
}

function commandHelp(command: Command): string {
  return [`Usage: egress ${command.name} ${command.usage}`.trimEnd(), '', command.summary, '', command.help.trim(), '', exitCodeHelp, ''].join('\n');
}

/** Runs one `egress` command line and returns its exit code. */
export async function main(argv: readonly string[], given: CommandIo = processIo): Promise<number> {
  // Whatever a command prints, a value read from the environment by the config never shows.
  const io = redactingIo(given);
  const [first, second] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const named = first === 'help' ? findCommand(argv.slice(1)) : undefined;
    io.stdout.write(named ? commandHelp(named.command) : overview());
    return first === undefined ? exitCodes.usage : exitCodes.ok;
  }
  if (first === '--version' || first === '-v') {
    io.stdout.write(`${await packageVersion()}\n`);
    return exitCodes.ok;
  }
  const found = findCommand(argv);
  if (found === undefined) {
    const group = commands.filter((command) => command.name.startsWith(`${first} `));
    if (group.length > 0) {
      io.stderr.write(`egress ${first}: expected one of ${group.map((command) => command.name.split(' ')[1]).join(', ')}${second ? `, got "${second}"` : ''}\n\n`);
      io.stderr.write(group.map((command) => `  egress ${command.name} ${command.usage}`).join('\n') + '\n');
      return second === '--help' || second === '-h' ? exitCodes.ok : exitCodes.usage;
    }
    io.stderr.write(`egress: unknown command "${first}"\n\n${overview()}`);
    return exitCodes.usage;
  }
  const { command, rest } = found;
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(commandHelp(command));
    return exitCodes.ok;
  }
  try {
    const parsed = parseArgs({ args: [...rest], options: command.options, allowPositionals: command.positionals ?? false, strict: true });
    return await command.run({ values: parsed.values as CommandContext['values'], positionals: parsed.positionals, io });
  } catch (error) {
    if (error instanceof ConfigFailure) {
      io.stderr.write(`${error.message}\n`);
      return exitCodes.usage;
    }
    if (error instanceof UsageError || isParseArgsError(error)) {
      io.stderr.write(`egress ${command.name}: ${(error as Error).message}\nRun \`egress ${command.name} --help\` for usage.\n`);
      return exitCodes.usage;
    }
    if (EgressConfigurationError.isInstance(error)) {
      io.stderr.write(`${error.message}\n`);
      return exitCodes.usage;
    }
    io.stderr.write(`egress ${command.name}: ${error instanceof Error ? error.message : String(error)}\n`);
    return exitCodes.failure;
  }
}

function findCommand(argv: readonly string[]): { command: Command; rest: readonly string[] } | undefined {
  const two = commands.find((command) => command.name === `${argv[0]} ${argv[1]}`);
  if (two) return { command: two, rest: argv.slice(2) };
  const one = commands.find((command) => command.name === argv[0]);
  return one ? { command: one, rest: argv.slice(1) } : undefined;
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const { fileURLToPath } = await import('node:url');
  // Both from src/ and from dist/, the manifest is one folder up.
  const manifest = JSON.parse(await readFile(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string };
  return manifest.version;
}
