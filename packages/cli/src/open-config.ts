import { createEgress, SecretRedactor, type Egress, type Logger } from '@egress/core';
import { checkConfig, defaultConfigFiles, findConfigFile, formatProblems, type ConfigListener, type ConfigMetrics, type ConfigScope, type EgressConfig } from './config-loader.js';
import { configuredTracing } from './configured-tracing.js';
import type { CommandIo } from './terminal-output.js';

/** The config file is missing or invalid: exit code 2, with every problem listed. */
export class ConfigFailure extends Error {
  override readonly name = 'ConfigFailure';
}

/** Finds, checks and builds the config named by `-c` (or found in the working directory). */
export async function openConfig(
  given: unknown,
  io: CommandIo,
  scope: ConfigScope = 'everything',
): Promise<{ file: string; config: EgressConfig; listeners: ConfigListener[]; metrics?: ConfigMetrics; tracing?: boolean }> {
  const file = findConfigFile(typeof given === 'string' ? given : undefined);
  if (file === undefined) {
    throw new ConfigFailure(`egress: no config file: pass -c <file> or create one of ${defaultConfigFiles.join(', ')} here (see https://github.com/egress-dev/egress/blob/main/docs/configuration.md)`);
  }
  // The spool is the producing application's: a command that only reads or drains the queue leaves
  // it to that process, which holds its lock.
  const check = await checkConfig(file, { environment: io.environment, scope, spool: false });
  io.redactions?.push(check.redact);
  for (const warning of check.warnings) io.stderr.write(`warning: ${check.file}  ${warning.path}: ${warning.message}\n`);
  if (check.config === undefined) throw new ConfigFailure(formatProblems(check));
  return { file: check.file, config: check.config, listeners: check.listeners, ...(check.metrics ? { metrics: check.metrics } : {}), ...(check.tracing ? { tracing: true } : {}) };
}

/**
 * An engine over the configured store. `producer` never delivers, so `status` and `dead` can look
 * at a store that workers are draining without taking part. By default the store must open at the
 * first try (a one-off command should say at once that its database is unreachable); with
 * `waitForStore: false` it is opened in the background, with retries, and this returns at once.
 * With `traced`, the file's `tracing: true` gives the engine OpenTelemetry tracing.
 */
export async function openEngine(
  given: unknown,
  io: CommandIo,
  role: 'producer' | 'worker',
  scope: ConfigScope = 'everything',
  options: { waitForStore?: boolean; traced?: boolean } = {},
): Promise<{ file: string; config: EgressConfig; listeners: ConfigListener[]; metrics?: ConfigMetrics; tracing?: boolean; egress: Egress }> {
  const { file, config, listeners, metrics, tracing } = await openConfig(given, io, scope);
  const waits = options.waitForStore !== false;
  const traced = options.traced === true ? await configuredTracing(tracing) : undefined;
  const egress = createEgress({ ...config, role, logger: stderrLogger(io), startup: waits ? 'fail-fast' : 'retry', ...(traced ? { tracing: traced } : {}) });
  // What the adapters know to be secret (passwords, tokens) is masked in everything the command prints.
  const adapterSecrets = new SecretRedactor(config.destinations.flatMap((destination) => destination.secrets?.() ?? []));
  io.redactions?.push((text) => adapterSecrets.redact(text));
  if (waits) await egress.ready();
  return { file, config, listeners, ...(metrics ? { metrics } : {}), ...(traced ? { tracing: true } : {}), egress };
}

/** Runs a one-off action on an engine that never delivers (see `openEngine`), closing it afterwards. */
export async function withProducerEngine(config: unknown, io: CommandIo, action: (egress: Egress) => Promise<number>, scope: ConfigScope = 'everything'): Promise<number> {
  const { egress } = await openEngine(config, io, 'producer', scope);
  try {
    return await action(egress);
  } finally {
    await egress.close({ timeout: 1000 });
  }
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
