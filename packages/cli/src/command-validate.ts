import { configOption, jsonOption, type Command } from './command.js';
import { checkConfig, defaultConfigFiles, findConfigFile, formatProblems } from './config-loader.js';
import { exitCodes } from './terminal-output.js';

export const validateCommand: Command = {
  name: 'validate',
  summary: 'Check a config file and report every problem, not just the first.',
  usage: '[-c file] [--json]',
  help: `
Checks the file's shape, the environment variables it references, each destination's options (by
constructing it with its adapter) and each policy. Nothing is connected to and nothing is delivered.
Values read from the environment are never printed.

Options:
  -c, --config <file>   config file (default: egress.config.yaml in the working directory)
  --json                {"file", "valid", "problems": [{path, message, line}], "warnings": [...]}

Exit code 0 when valid, 2 when not.`,
  options: { ...configOption, ...jsonOption },
  async run({ values, io }) {
    const file = findConfigFile(typeof values.config === 'string' ? values.config : undefined);
    if (file === undefined) {
      io.stderr.write(`egress validate: no config file: pass -c <file> or create one of ${defaultConfigFiles.join(', ')}\n`);
      return exitCodes.usage;
    }
    const check = await checkConfig(file, { environment: io.environment });
    io.redactions?.push(check.redact);
    await check.config?.store.close();
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ file: check.file, valid: check.problems.length === 0, problems: check.problems, warnings: check.warnings }, null, 2)}\n`);
    } else {
      for (const warning of check.warnings) io.stdout.write(`warning: ${check.file}  ${warning.path}: ${warning.message}\n`);
      if (check.problems.length > 0) io.stdout.write(`${formatProblems(check)}\n`);
      else io.stdout.write(`${check.file} is valid: ${check.config?.destinations.map((destination) => destination.name).join(', ')} with the ${check.config?.store.kind} store.\n`);
    }
    return check.problems.length === 0 ? exitCodes.ok : exitCodes.usage;
  },
};
