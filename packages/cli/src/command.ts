import type { ParseArgsConfig } from 'node:util';
import type { CommandIo } from './terminal-output.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

/** What every command receives: its parsed options and arguments, and where to write. */
export interface CommandContext {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  io: CommandIo;
}

export interface Command {
  /** As typed: `status`, `dead list`. */
  name: string;
  /** One line for `egress --help`. */
  summary: string;
  /** Arguments after the name, e.g. `[ids...] [--all]`. */
  usage: string;
  /** The rest of `egress <command> --help`: what it does, its options, examples. */
  help: string;
  options: Options;
  positionals?: boolean;
  run(context: CommandContext): Promise<number>;
}

/** Options most commands share. */
export const configOption: Options = { config: { type: 'string', short: 'c' } };
export const jsonOption: Options = { json: { type: 'boolean' } };

