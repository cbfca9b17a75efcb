import { silentLogger } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { http } from '../src/index.js';
import { batchOf, useReceiver } from './receiver.js';

const traceHeaders = {
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  tracestate: 'vendor=opaque',
};
const traced = { signal: new AbortController().signal, logger: silentLogger, traceHeaders };

const single = http();
const batched = http({ batch: true });
const receiver = useReceiver({ stop: async () => {
  await single.stop?.();
  await batched.stop?.();
} });

describe('http: trace context on each request', () => {
  test('sends traceparent and tracestate on a single-event request', async () => {
    await single.deliver(batchOf([{ url: `${receiver.origin}/one`, data: { n: 1 } }]), traced);
    expect(receiver.requests[0]!.headers).toMatchObject(traceHeaders);
  });

  test('sends them on every request of a batch delivered one event at a time', async () => {
    await single.deliver(batchOf([{ url: `${receiver.origin}/a`, headers: { 'x-n': '1' } }, { url: `${receiver.origin}/b` }]), traced);
    expect(receiver.requests).toHaveLength(2);
    for (const request of receiver.requests) expect(request.headers).toMatchObject(traceHeaders);
  });

  test('sends them on a batch-mode request', async () => {
    await batched.deliver(batchOf([{ url: `${receiver.origin}/many`, data: { n: 1 } }, { url: `${receiver.origin}/many`, data: { n: 2 } }]), traced);
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0]!.headers).toMatchObject(traceHeaders);
  });

  test('keeps a traceparent the call set itself, without adding a tracestate to it, and sends none without tracing', async () => {
    const own = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await single.deliver(batchOf([{ url: `${receiver.origin}/own`, headers: { traceparent: own } }]), traced);
    await single.deliver(batchOf([{ url: `${receiver.origin}/untraced` }]), { signal: new AbortController().signal, logger: silentLogger });
    expect(receiver.requests[0]!.headers.traceparent).toBe(own);
    expect(receiver.requests[0]!.headers.tracestate).toBeUndefined();
    expect(receiver.requests[1]!.headers.traceparent).toBeUndefined();
    expect(receiver.requests[1]!.headers.tracestate).toBeUndefined();
  });
});
