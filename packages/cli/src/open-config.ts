import { createEgress, SecretRedactor, type Egress, type Logger } from '@egress/core';
import { checkConfig, defaultConfigFiles, findConfigFile, formatProblems, type ConfigListener, type EgressConfig } from './config-loader.js';
import type { CommandIo } from './terminal-output.js';

/** The config file is missing or invalid: exit code 2, with every problem listed. */
export class ConfigFailure extends Error {
  override readonly name = 'ConfigFailure';
}

/** Finds, checks and builds the config named by `-c` (or found in the working directory). */
export async function openConfig(given: unknown, io: CommandIo): Promise<{ file: string; config: EgressConfig; listeners: ConfigListener[] }> {
  const file = findConfigFile(typeof given === 'string' ? given : undefined);
  if (file === undefined) {
    throw new ConfigFailure(`egress: no config file: pass -c <file> or create one of ${defaultConfigFiles.join(', ')} here (see docs/configuration.md)`);
  }
  const check = await checkConfig(file, { environment: io.environment });
  io.redactions?.push(check.redact);
  for (const warning of check.warnings) io.stderr.write(`warning: ${check.file}  ${warning.path}: ${warning.message}\n`);
  if (check.config === undefined) throw new ConfigFailure(formatProblems(check));
  return { file: check.file, config: check.config, listeners: check.listeners };
}

/**
 * An engine over the configured store. `producer` never delivers, so `status` and `dead` can look
 * at a store that workers are draining without taking part.
 */
export async function openEngine(given: unknown, io: CommandIo, role: 'producer' | 'worker'): Promise<{ file: string; config: EgressConfig; listeners: ConfigListener[]; egress: Egress }> {
  const { file, config, listeners } = await openConfig(given, io);
  const egress = createEgress({ ...config, role, logger: stderrLogger(io) });
  // What the adapters know to be secret (passwords, tokens) is masked in everything the command prints.
  const adapterSecrets = new SecretRedactor(config.destinations.flatMap((destination) => destination.secrets?.() ?? []));
  io.redactions?.push((text) => adapterSecrets.redact(text));
  await egress.ready();
  return { file, config, listeners, egress };
}

/** Warnings and errors on stderr, one line each; the fields' errors are already redacted by adapters. */
export function stderrLogger(io: CommandIo): Logger {
  const line = (level: string, fields: Record<string, unknown>, message: string) => {
    const where = typeof fields.destination === 'string' ? ` [${fields.destination}]` : '';
    const cause = fields.error instanceof Error ? `: ${fields.error.message}` : '';
    io.stderr.write(`${level}${where} ${message}${cause}\n`);
  };
  return {
    debug() {},
    info() {},
    warn: (fields, message) => line('warning:', fields, message),
    error: (fields, message) => line('error:', fields, message),
  };
}
