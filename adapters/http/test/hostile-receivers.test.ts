import { createServer, type Server } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { createEgress, memoryStore, type Egress, type Logger } from '@egress/core';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { http, type HttpOptions } from '../src/index.js';
import { startReceiver, type Receiver } from './receiver.js';

const secrets = {
  adapterKey: 'adapter-key-7d41c0ffee',
  signing: `whsec_${Buffer.from('signing-key-bytes-0123456789abcdef').toString('base64')}`,
  callHeader: 'call-header-token-5be2',
  bearer: 'bearer-token-93af0e1d',
  queryToken: 'query-token-1c4f88aa',
  paramKey: 'param-key-62d0b7',
  username: 'service-user',
  password: 'p@ss word/9%x',
};

/** Every spelling of every secret a leak could take: plain, URL-encoded, base64. */
function leakSpellings(): string[] {
  const values = Object.values(secrets).flatMap((value) => [value, value.replace(/^whsec_/, '')]);
  values.push(Buffer.from(`${secrets.username}:${secrets.password}`).toString('base64'));
  return values.flatMap((value) => [value, encodeURIComponent(value), Buffer.from(value).toString('base64')]).filter((value) => value !== secrets.username && value.length >= 8);
}

/** A logger that keeps every line as the JSON a log shipper would store, errors with their stacks. */
function capturingLogger(lines: string[]): Logger {
  const keep = (fields: Record<string, unknown>, message: string) =>
    lines.push(JSON.stringify({ fields, message }, (_key, value: unknown) => (value instanceof Error ? { name: value.name, message: value.message, stack: value.stack, cause: value.cause } : value)));
  return { debug: keep, info: keep, warn: keep, error: keep };
}

interface Observed {
  egress: Egress;
  /** Everything the library stored or emitted, as text. */
  texts: string[];
}

function observedEgress(options: HttpOptions, maxAttempts = 1): Observed {
  const texts: string[] = [];
  const egress = createEgress({
    destinations: [http({ headers: { 'x-api-key': secrets.adapterKey }, signing: { secrets: secrets.signing }, ...options })],
    store: memoryStore(),
    logger: capturingLogger(texts),
    policies: { http: { retry: { maxAttempts, initialDelay: 5, maxDelay: 10 } } },
  });
  for (const name of ['retrying', 'dead', 'dropped', 'delivered'] as const) egress.on(name, (event) => texts.push(JSON.stringify(event)));
  return { egress: egress as unknown as Egress, texts };
}

/** The call every test makes: credentials in auth, a header, the URL's query and params. */
function hostileCall(url: string, auth: 'bearer' | 'basic' = 'bearer') {
  return {
    url: `${url}?access_token=${secrets.queryToken}&page=2`,
    data: { order: 42 },
    headers: { 'x-auth-token': secrets.callHeader },
    params: { api_key: secrets.paramKey },
    auth: auth === 'bearer' ? { bearer: secrets.bearer } : { username: secrets.username, password: secrets.password },
  };
}

function sendHttp(observed: Observed, input: unknown): { settled(): Promise<unknown> } {
  return (observed.egress.send as unknown as Record<string, (input: unknown) => { settled(): Promise<unknown> }>).http!(input);
}

async function everythingStoredAndEmitted(observed: Observed, settled: unknown): Promise<string> {
  const { egress, texts } = observed;
  return [...texts, JSON.stringify(settled), JSON.stringify(await egress.deadLetters.list()), JSON.stringify(await egress.health()), JSON.stringify(await egress.stats())].join('\n');
}

function expectNoLeak(text: string): void {
  for (const spelling of leakSpellings()) expect(text, `leaked ${spelling}`).not.toContain(spelling);
}

let receiver: Receiver;
let other: Receiver;
const engines: Egress[] = [];

beforeAll(async () => {
  receiver = await startReceiver();
  other = await startReceiver();
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((egress) => egress.close({ timeout: 1000 })));
  receiver.requests.length = 0;
  other.requests.length = 0;
});
afterAll(async () => {
  await receiver.close();
  await other.close();
});

function track(observed: Observed): Observed {
  engines.push(observed.egress);
  return observed;
}

/** Answers with the whole request echoed back, as some APIs do in their error bodies. */
function echoWith(status: number) {
  return (request: { method: string; url: string; headers: Record<string, unknown> }, response: import('node:http').ServerResponse) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ error: 'unauthorized', request: { method: request.method, url: `${receiver.origin}${request.url}`, headers: request.headers } }));
  };
}

describe('hostile receivers: nothing secret leaks, nothing hangs', () => {
  test.each(['bearer', 'basic'] as const)('a 401 echoing the request (URL with access_token, %s auth, credential headers) leaks nothing into dead letters, events, settled(), health() or logs', async (auth) => {
    receiver.answer(echoWith(401));
    const observed = track(observedEgress({}));
    const receipt = sendHttp(observed, hostileCall(`${receiver.origin}/hook`, auth));
    const settled = await receipt.settled();
    expect(settled).toMatchObject({ status: 'dead' });
    // The receiver did get the credentials: the leak, if any, would be on our side.
    expect(receiver.requests[0]!.url).toContain(secrets.queryToken);
    const all = await everythingStoredAndEmitted(observed, settled);
    expect(all).toContain('401');
    expect(all).toContain('[redacted]');
    expectNoLeak(all);
  });

  test('a 503 echoing the request leaks nothing into the retrying events either', async () => {
    receiver.answer(echoWith(503));
    const observed = track(observedEgress({}, 2));
    const receipt = sendHttp(observed, hostileCall(`${receiver.origin}/hook`));
    const settled = await receipt.settled();
    expect(observed.texts.some((text) => text.includes('"retryAt"'))).toBe(true);
    expectNoLeak(await everythingStoredAndEmitted(observed, settled));
  });

  test('a redirect to another origin carries no custom header of the adapter or the call, only allow-listed ones', async () => {
    receiver.answer((_request, response) => {
      response.writeHead(307, { location: `${other.origin}/landing` });
      response.end();
    });
    const observed = track(observedEgress({ followRedirects: { max: 3, crossOriginHeaders: ['x-trace'] } }));
    const call = { ...hostileCall(`${receiver.origin}/hook`), headers: { 'x-auth-token': secrets.callHeader, 'x-trace': 'trace-1' } };
    const settled = await sendHttp(observed, call).settled();
    expect(settled).toEqual({ status: 'delivered' });
    expect(receiver.requests[0]!.headers['x-api-key']).toBe(secrets.adapterKey);
    const landed = other.requests[0]!;
    expect(landed.url).toBe('/landing');
    expect(landed.headers['x-trace']).toBe('trace-1');
    expect(landed.headers['content-type']).toBe('application/json');
    for (const name of ['x-api-key', 'x-auth-token', 'authorization', 'webhook-signature', 'webhook-id', 'idempotency-key']) expect(landed.headers[name], name).toBeUndefined();
    expectNoLeak(JSON.stringify(landed.headers));
  });

  test('a redirect within the same origin keeps the headers', async () => {
    receiver.answer((request, response) => {
      if (request.url.startsWith('/hook')) {
        response.writeHead(308, { location: '/moved' });
        response.end();
      } else response.end('ok');
    });
    const observed = track(observedEgress({ followRedirects: true }));
    await sendHttp(observed, hostileCall(`${receiver.origin}/hook`)).settled();
    const moved = receiver.requests[1]!;
    expect(moved.url).toBe('/moved');
    expect(moved.headers['x-api-key']).toBe(secrets.adapterKey);
    expect(moved.headers['x-auth-token']).toBe(secrets.callHeader);
  });

  test('headers trickled past the deadline fail the attempt at the deadline, without hanging', async () => {
    const trickler = await startRawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\n');
      const timer = setInterval(() => socket.write('x'), 50);
      socket.on('close', () => clearInterval(timer));
      socket.on('error', () => clearInterval(timer));
    });
    try {
      const observed = track(observedEgress({ timeout: 300 }));
      const started = performance.now();
      const settled = await sendHttp(observed, { ...hostileCall(`http://127.0.0.1:${trickler.port}/hook`) }).settled();
      expect(performance.now() - started).toBeLessThan(3000);
      expect(JSON.stringify(settled)).toContain('timed out after 300 ms');
      expectNoLeak(await everythingStoredAndEmitted(observed, settled));
    } finally {
      await trickler.close();
    }
  });

  test.each([200, 500])('a never-ending %i body is read only up to the cap, then the connection is dropped', async (status) => {
    const endless = await startRawServer((socket, counter) => {
      socket.write(`HTTP/1.1 ${status} Whatever\r\ncontent-type: text/plain\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, `echo access_token=${secrets.queryToken} `);
      const pump = () => {
        while (!socket.destroyed && socket.write(chunk)) counter.bytes += chunk.length;
      };
      socket.on('drain', pump);
      socket.on('error', () => {});
      pump();
    });
    try {
      const observed = track(observedEgress({ timeout: 10_000 }));
      const started = performance.now();
      const settled = await sendHttp(observed, hostileCall(`http://127.0.0.1:${endless.port}/hook`)).settled();
      expect(performance.now() - started).toBeLessThan(5000);
      expect(settled).toMatchObject({ status: status === 200 ? 'delivered' : 'dead' });
      await endless.closedAll();
      // The adapter stops reading after about a megabyte; the socket buffers hold a few more.
      expect(endless.counter.bytes).toBeLessThan(32 * 1024 * 1024);
      expectNoLeak(await everythingStoredAndEmitted(observed, settled));
    } finally {
      await endless.close();
    }
  });
});

/** A TCP server that answers with raw bytes, for answers node:http would not let a test write. */
async function startRawServer(onConnection: (socket: Socket, counter: { bytes: number }) => void) {
  const sockets = new Set<Socket>();
  const counter = { bytes: 0 };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => onConnection(socket, counter));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    counter,
    async closedAll() {
      const deadline = Date.now() + 3000;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(sockets.size).toBe(0);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
