import { randomUUID } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBatchId, silentLogger, type Batch } from '@egress/core';
import type { SseDestination, SseEvent, SsePayload } from '@egress/sse';

/** A node:http server on a loopback port, closed by `close()` even with streams still open. */
export async function startServer(listener: RequestListener): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** One batch as core would hand it to `deliver`; the same ids make it a retry. */
export function batchOf(events: readonly { channel: string; payload: SsePayload['payload']; id?: string }[]): Batch<SsePayload> {
  const batchEvents = events.map((event) => ({ id: event.id ?? randomUUID(), payload: { channel: event.channel, payload: event.payload }, attempt: 1, sentAt: Date.now() }));
  return {
    id: createBatchId('sse', batchEvents.map((event) => event.id)),
    destination: 'sse',
    partition: events[0]?.channel ?? '',
    attempt: 1,
    events: batchEvents,
  };
}

export async function publish(destination: SseDestination, channel: string, payloads: readonly unknown[]): Promise<void> {
  await destination.deliver(batchOf(payloads.map((payload) => ({ channel, payload: payload as SsePayload['payload'] }))), { signal: new AbortController().signal, logger: silentLogger });
}

/** Reads `count` events from an iterator, failing after `timeout` ms rather than hanging the test. */
export async function take<T>(iterator: AsyncIterator<T>, count: number, timeout = 10_000): Promise<T[]> {
  const taken: T[] = [];
  const deadline = Date.now() + timeout;
  while (taken.length < count) {
    const remaining = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([
      iterator.next(),
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), Math.max(0, remaining));
      }),
    ]);
    clearTimeout(timer);
    if (next === 'timeout') throw new Error(`timed out after ${taken.length} of ${count} events: ${JSON.stringify(taken).slice(0, 500)}`);
    if (next.done) throw new Error(`stream ended after ${taken.length} of ${count} events`);
    taken.push(next.value);
  }
  return taken;
}

export function numbersOf(events: readonly SseEvent[]): unknown[] {
  return events.map((event) => (event.data as { n?: unknown }).n);
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, index) => from + index);
}

/** Waits until `check` holds, polling; for state that changes on another socket's schedule. */
export async function eventually(check: () => boolean | Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Reads the raw text of a stream response until `until` matches, then aborts the request. */
export async function readRaw(url: string, until: (text: string) => boolean, init: RequestInit = {}, timeout = 10_000): Promise<{ status: number; headers: Headers; text: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  try {
    const response = await fetch(url, { ...init, signal: controller.signal });
    let text = '';
    if (response.body && response.headers.get('content-type')?.startsWith('text/event-stream')) {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          text += decoder.decode(chunk, { stream: true });
          if (until(text)) break;
        }
      } catch (error) {
        if (!controller.signal.aborted) throw error;
      }
    } else {
      text = await response.text();
    }
    return { status: response.status, headers: response.headers, text };
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}
