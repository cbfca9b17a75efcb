import { configOption, jsonOption, type Command } from './command.js';
import { partitionLabel } from './command-status.js';
import { withProducerEngine } from './open-config.js';
import { UsageError, exitCodes, formatAge, formatTable } from './terminal-output.js';

export const partitionsCommand: Command = {
  name: 'partitions',
  summary: 'List paused and disabled partitions, as the store keeps them for every worker.',
  usage: '[-c file] [-d destination] [--json]',
  help: `
A partition pauses when its deliveries keep failing (the circuit policy) and is probed one delivery
at a time; it is disabled after the policy's disableAfter, or by \`egress disable\`, and then waits
for \`egress enable\`.

Options:
  -c, --config <file>        config file (default: egress.config.yaml)
  -d, --destination <name>   only this destination
  --json                     a JSON array`,
  options: { ...configOption, ...jsonOption, destination: { type: 'string', short: 'd' } },
  async run({ values, io }) {
    return withProducerEngine(values.config, io, async (egress) => {
      const states = await egress.partitions({ destination: typeof values.destination === 'string' ? values.destination : undefined });
      if (values.json) {
        io.stdout.write(`${JSON.stringify(states, null, 2)}\n`);
        return exitCodes.ok;
      }
      if (states.length === 0) {
        io.stdout.write('Every partition is delivering.\n');
        return exitCodes.ok;
      }
      const now = Date.now();
      io.stdout.write(
        `${formatTable(
          ['DESTINATION', 'PARTITION', 'STATE', 'FOR', 'FAILURES', 'NEXT PROBE', 'REASON'],
          states.map((state) => [
            state.destination,
            partitionLabel(state.partition),
            state.state,
            formatAge(now - state.since),
            state.failures,
            state.state === 'paused' ? (state.probeAt <= now ? 'now' : `in ${formatAge(state.probeAt - now)}`) : '-',
            state.reason.replace(/\s+/g, ' ').slice(0, 80),
          ]),
        )}\n`,
      );
      return exitCodes.ok;
    }, 'store');
  },
};

export const enableCommand: Command = {
  name: 'enable',
  summary: 'Put a paused or disabled partition back to delivery (every one of the destination when none is named).',
  usage: '<destination> [partition] [-c file] [--json]',
  help: `
Running workers deliver its waiting events at once.

Options:
  -c, --config <file>   config file (default: egress.config.yaml)
  --json                print {"enabled": n}

Examples:
  egress enable webhooks https://hooks.example.com
  egress enable webhooks`,
  options: { ...configOption, ...jsonOption },
  positionals: true,
  async run({ values, positionals, io }) {
    const [destination, partition, ...extra] = positionals;
    if (destination === undefined || extra.length > 0) throw new UsageError('expected a destination and, optionally, one partition');
    return withProducerEngine(values.config, io, async (egress) => {
      const enabled = await egress.enable(destination, partition);
      io.stdout.write(values.json ? `${JSON.stringify({ enabled })}\n` : `${enabled} partition${enabled === 1 ? '' : 's'} enabled.\n`);
      return partition !== undefined && enabled === 0 ? exitCodes.failure : exitCodes.ok;
    }, 'store');
  },
};

export const disableCommand: Command = {
  name: 'disable',
  summary: 'Stop delivering one partition until it is enabled; its events wait in the store.',
  usage: '<destination> <partition> [--reason text] [-c file] [--json]',
  help: `
Options:
  -c, --config <file>   config file (default: egress.config.yaml)
  --reason <text>       why, shown by \`egress partitions\` (default "disabled by hand")
  --json                print {"disabled": true|false}

Example:
  egress disable webhooks https://hooks.example.com --reason "receiver migrating"`,
  options: { ...configOption, ...jsonOption, reason: { type: 'string' } },
  positionals: true,
  async run({ values, positionals, io }) {
    const [destination, partition, ...extra] = positionals;
    if (destination === undefined || partition === undefined || extra.length > 0) throw new UsageError('expected a destination and one partition');
    return withProducerEngine(values.config, io, async (egress) => {
      const disabled = await egress.disable(destination, partition, typeof values.reason === 'string' ? values.reason : undefined);
      io.stdout.write(values.json ? `${JSON.stringify({ disabled })}\n` : disabled ? 'Partition disabled.\n' : 'The partition was disabled already.\n');
      return exitCodes.ok;
    }, 'store');
  },
};

