import { EgressConfigurationError } from '@egress/core';
import { createTraceState, TraceFlags } from '@opentelemetry/api';
import { describe, expect, test } from 'vitest';
import { formatStoredTraceContext, openTelemetryTracing, parseStoredTraceContext } from '../../src/index.js';

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const spanId = '00f067aa0ba902b7';

describe('the trace context stored with each event', () => {
  test('is the traceparent, then the tracestate after a semicolon, and reads back as a remote span context', () => {
    const text = formatStoredTraceContext({ traceId, spanId, traceFlags: TraceFlags.SAMPLED, traceState: createTraceState('vendor=opaque;value,other=x') });
    expect(text).toBe(`00-${traceId}-${spanId}-01;vendor=opaque;value,other=x`);
    const read = parseStoredTraceContext(text)!;
    expect(read).toMatchObject({ traceId, spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true });
    expect(read.traceState?.get('vendor')).toBe('opaque;value');
    expect(formatStoredTraceContext({ traceId, spanId, traceFlags: TraceFlags.NONE })).toBe(`00-${traceId}-${spanId}-00`);
    expect(parseStoredTraceContext(`00-${traceId}-${spanId}-00`)).toMatchObject({ traceFlags: TraceFlags.NONE });
    expect(parseStoredTraceContext(`00-${traceId}-${spanId}-ff`)).toMatchObject({ traceFlags: 0xff });
  });

  test('stores nothing for an invalid span context, and reads nothing from text that is not a traceparent', () => {
    expect(formatStoredTraceContext({ traceId: '0'.repeat(32), spanId, traceFlags: 1 })).toBeUndefined();
    expect(formatStoredTraceContext({ traceId, spanId: '0'.repeat(16), traceFlags: 1 })).toBeUndefined();
    for (const text of [undefined, '', 'garbage', `01-${traceId}-${spanId}-01`, `00-${'0'.repeat(32)}-${spanId}-01`, `00-${traceId}-${'0'.repeat(16)}-01`, `00-${traceId.toUpperCase()}-${spanId}-01`, `00-${traceId}-${spanId}-0g`, `00-${traceId}-${spanId}-01x`, `00-${traceId}-${spanId}-01-`, `00-${traceId}-${spanId.slice(1)}-01`]) {
      expect(parseStoredTraceContext(text), String(text)).toBeUndefined();
    }
  });

  test('refuses a tracerProvider that is not one, naming the option', () => {
    expect(() => openTelemetryTracing({ tracerProvider: {} as never })).toThrow(EgressConfigurationError);
    expect(() => openTelemetryTracing({ tracerProvider: {} as never })).toThrow(/tracerProvider/);
  });
});
