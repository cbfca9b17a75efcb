import { describe, expect, test } from 'vitest';
import { createEgress, EgressConfigurationError, type DeliveryContext, type DeliveryTraceOutcome, type Logger, type Tracing } from '../src/index.js';
import { failTimes, permanent, recordingDestination, retryable } from './helpers.js';

/** A tracing stand-in that numbers the sends and records what each delivery attempt was told. */
function recordingTracing(options: { failSent?: boolean; failDelivering?: boolean; longTrace?: boolean } = {}) {
  let sends = 0;
  const attempts: { traces: (string | undefined)[]; attempt: number; outcome?: DeliveryTraceOutcome; endings: number }[] = [];
  const tracing: Tracing = {
    sent(destination) {
      if (options.failSent) throw new Error('sent hook broke');
      sends += 1;
      return options.longTrace ? 'x'.repeat(1025) : `send-${sends}-${destination}`;
    },
    delivering(batch) {
      if (options.failDelivering) throw new Error('delivering hook broke');
      const record: (typeof attempts)[number] = { traces: batch.events.map((event) => event.trace), attempt: batch.attempt, endings: 0 };
      attempts.push(record);
      return {
        headers: { traceparent: `attempt-${attempts.length}` },
        ended(outcome) {
          record.outcome = outcome;
          record.endings += 1;
        },
      };
    },
  };
  return { tracing, attempts };
}

function capturingLogger() {
  const errors: string[] = [];
  const logger: Logger = { debug() {}, info() {}, warn() {}, error: (_fields, message) => void errors.push(String(message)) };
  return { logger, errors };
}

describe('tracing hooks', () => {
  test("each send's trace context reaches every attempt of its batch, and the adapter gets the attempt's headers", async () => {
    const contexts: (DeliveryContext['traceHeaders'])[] = [];
    const sink = recordingDestination({ behaviour: failTimes(1, () => retryable()) });
    const original = sink.destination.deliver;
    sink.destination.deliver = (batch, context) => {
      contexts.push(context.traceHeaders);
      return original(batch, context);
    };
    const { tracing, attempts } = recordingTracing();
    const egress = createEgress({ destinations: [sink.destination], tracing, policies: { events: { batch: { maxEvents: 10, maxDelay: 60_000 }, retry: { initialDelay: 1, maxDelay: 2 } } } });
    try {
      await egress.run((send) => {
        send.events({ n: 1 });
        send.events({ n: 2 });
      });
      await egress.flush();
    } finally {
      await egress.close();
    }
    expect(attempts.map((attempt) => attempt.traces)).toEqual([
      ['send-1-events', 'send-2-events'],
      ['send-1-events', 'send-2-events'],
    ]);
    expect(attempts.map((attempt) => attempt.attempt)).toEqual([1, 2]);
    expect(attempts[0]!.outcome).toMatchObject({ delivered: 0, retrying: 2, dead: 0, error: { name: 'RetryableError' } });
    expect(attempts[1]!.outcome).toEqual({ delivered: 2, retrying: 0, dead: 0, error: undefined });
    expect(attempts.map((attempt) => attempt.endings)).toEqual([1, 1]);
    expect(contexts).toEqual([{ traceparent: 'attempt-1' }, { traceparent: 'attempt-2' }]);
  });

  test('a dead letter keeps its trace context, and its replay is delivered with it', async () => {
    const sink = recordingDestination({ behaviour: failTimes(1, () => permanent()) });
    const { tracing, attempts } = recordingTracing();
    const egress = createEgress({ destinations: [sink.destination], tracing });
    try {
      egress.send.events({ n: 1 });
      await egress.flush();
      expect(attempts[0]!.outcome).toMatchObject({ delivered: 0, retrying: 0, dead: 1, error: { name: 'PermanentError' } });
      await egress.deadLetters.retry();
      await egress.flush();
    } finally {
      await egress.close();
    }
    expect(attempts.map((attempt) => attempt.traces)).toEqual([['send-1-events'], ['send-1-events']]);
  });

  test('hooks that throw are logged and cost the trace, never the send or the delivery; an oversized context is not stored', async () => {
    for (const options of [{ failSent: true }, { failDelivering: true }, { longTrace: true }]) {
      const sink = recordingDestination();
      const { tracing, attempts } = recordingTracing(options);
      const { logger, errors } = capturingLogger();
      const egress = createEgress({ destinations: [sink.destination], tracing, logger });
      try {
        egress.send.events({ n: 1 });
        await egress.flush();
      } finally {
        await egress.close();
      }
      expect(sink.delivered()).toEqual([1]);
      if (options.failSent) expect(errors).toContain('tracing failed at send');
      if (options.failDelivering) expect(errors).toContain('tracing failed to start a delivery');
      if (options.longTrace) expect(attempts[0]!.traces).toEqual([undefined]);
    }
  });

  test('an attempt abandoned at shutdown is ended as given back', async () => {
    const sink = recordingDestination({ behaviour: () => new Promise(() => {}) });
    const { tracing, attempts } = recordingTracing();
    const egress = createEgress({ destinations: [sink.destination], tracing });
    egress.send.events({ n: 1 });
    while (attempts.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await egress.close({ timeout: 50 });
    expect(attempts[0]!.outcome).toMatchObject({ delivered: 0, retrying: 1, dead: 0, error: { name: 'EgressTimeoutError' } });
    expect(attempts[0]!.endings).toBe(1);
  });

  test('refuses a tracing option without the hooks', () => {
    expect(() => createEgress({ destinations: [recordingDestination().destination], tracing: {} as Tracing })).toThrow(EgressConfigurationError);
  });
});
