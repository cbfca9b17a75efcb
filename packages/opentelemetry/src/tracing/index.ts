export { openTelemetryTracing, tracerName, type OpenTelemetryTracingOptions } from './opentelemetry-tracing.js';
export { formatStoredTraceContext, parseStoredTraceContext } from './stored-trace-context.js';
