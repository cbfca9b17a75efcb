import type { Tracing } from '@egress/core';
import type { openTelemetryTracing } from '@egress/opentelemetry';
import { importOptional } from './optional-import.js';
import { UsageError } from './terminal-output.js';

/**
 * The tracing a config's `tracing: true` asks for: `openTelemetryTracing()` on the global tracer
 * provider of `@opentelemetry/api`, which the operator's SDK setup (`node --import ./otel-setup.mjs`)
 * registers before the command starts. Without an SDK the provider is a no-op and traces nothing.
 */
export async function configuredTracing(enabled: boolean | undefined): Promise<Tracing | undefined> {
  if (enabled !== true) return undefined;
  const imported = await importOptional('@egress/opentelemetry');
  if (!imported.ok) throw new UsageError(`tracing: true: ${imported.message}; tracing needs @egress/opentelemetry and @opentelemetry/api`);
  return (imported.module.openTelemetryTracing as typeof openTelemetryTracing)();
}
