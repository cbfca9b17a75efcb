import { createEgress, defineDestination, memoryStore, silentLogger, type Alert, type EgressEvents } from '@egress/core';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { http } from '../src/index.js';
import { startReceiver, type Receiver } from './receiver.js';

async function until(condition: () => boolean | Promise<boolean>, what: string, timeout = 20_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Answers 503 while `down`, and counts how many requests are open at once. */
function flaky(receiver: Receiver) {
  const state = { down: true, open: 0, mostOpen: 0 };
  receiver.answer(async (_request, response) => {
    state.open += 1;
    state.mostOpen = Math.max(state.mostOpen, state.open);
    // Held a moment, so that a second request sent meanwhile would overlap it.
    await new Promise((resolve) => setTimeout(resolve, 10));
    state.open -= 1;
    response.statusCode = state.down ? 503 : 200;
    response.end(state.down ? 'down' : 'ok');
  });
  return state;
}

let failing: Receiver;
let healthy: Receiver;
let chat: Receiver;
const opened: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  [failing, healthy, chat] = await Promise.all([startReceiver(), startReceiver(), startReceiver()]);
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((egress) => egress.close()));
  for (const receiver of [failing, healthy, chat]) {
    receiver.requests.length = 0;
    receiver.answer((_request, response) => response.end('ok'));
  }
});
afterAll(async () => {
  await Promise.all([failing, healthy, chat].map((receiver) => receiver.close()));
});

/** A chat tool's incoming webhook, as a destination of its own for alerts. */
const chatWebhook = defineDestination({
  name: 'chat',
  input: z.strictObject({ url: z.string(), text: z.string(), alert: z.unknown().optional() }),
  async deliver(batch) {
    for (const { payload } of batch.events) {
      const response = await fetch(payload.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: payload.text, alert: payload.alert }) });
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`chat answered ${response.status}`);
    }
  },
});

function recordEvents(egress: { on<Name extends keyof EgressEvents>(name: Name, listener: (event: EgressEvents[Name]) => void): () => void }) {
  const seen: { name: string; event: unknown }[] = [];
  for (const name of ['paused', 'resumed', 'disabled', 'dead'] as const) egress.on(name, (event) => seen.push({ name, event }));
  return seen;
}

describe('circuit breaking per partition', () => {
  test('pauses a failing origin, probes it one request at a time without spending attempts, resumes on an answer; another origin is not held up', async () => {
    const receiver = flaky(failing);
    const alerts: Alert[] = [];
    const egress = createEgress({
      destinations: [http()],
      store: memoryStore(),
      logger: silentLogger,
      policies: { http: { concurrency: 4, retry: { initialDelay: 5, maxDelay: 5, maxAttempts: 3 }, circuit: { failures: 3, probeInterval: 20 } } },
      alerts: [{ on: 'paused', send: (alert) => void alerts.push(alert) }],
    });
    opened.push(egress);
    const seen = recordEvents(egress);
    for (let n = 0; n < 20; n++) egress.send.http({ url: `${failing.origin}/hook`, data: { n } });
    await until(() => seen.some((entry) => entry.name === 'paused'), 'paused');
    const atPause = failing.requests.length;

    for (let n = 0; n < 5; n++) egress.send.http({ url: `${healthy.origin}/hook`, data: { n } });
    await until(() => healthy.requests.length === 5, 'the healthy origin served while the other is paused');
    // Up to eight deliveries were claimed at the pause (four slots, four claimed ahead); the
    // requests after them are probes, each alone at the receiver.
    await until(() => failing.requests.length >= atPause + 8, 'what was claimed before the pause');
    receiver.mostOpen = 0;
    await until(() => failing.requests.length >= atPause + 8 + 10, 'ten probes');
    expect(receiver.mostOpen).toBe(1);
    const [stats] = await egress.stats();
    expect(stats!.dead).toBe(0);

    receiver.down = false;
    await until(() => seen.some((entry) => entry.name === 'resumed'), 'resumed');
    await egress.flush();
    const numbers = new Set(failing.requests.filter((request) => request.body.length > 0).map((request) => (JSON.parse(request.body.toString()) as { n: number }).n));
    expect(numbers.size).toBe(20);
    expect(seen.filter((entry) => entry.name === 'dead')).toEqual([]);
    expect(seen.filter((entry) => entry.name === 'paused')).toEqual([
      { name: 'paused', event: expect.objectContaining({ destination: 'http', partition: failing.origin, failures: 3, reason: expect.stringContaining('503') }) },
    ]);
    expect(seen.filter((entry) => entry.name === 'resumed')).toEqual([{ name: 'resumed', event: { destination: 'http', partition: failing.origin, by: 'probe' } }]);
    expect(alerts).toEqual([expect.objectContaining({ kind: 'paused', destination: 'http', partitions: [failing.origin], count: 1 })]);
    expect(await egress.partitions()).toEqual([]);
  });

  test('a failure ratio pauses a partition that fails often but not in a row', async () => {
    let call = 0;
    failing.answer((_request, response) => {
      call += 1;
      response.statusCode = call % 2 === 0 ? 200 : 503;
      response.end();
    });
    const egress = createEgress({
      destinations: [http()],
      logger: silentLogger,
      policies: { http: { concurrency: 1, retry: { initialDelay: 1, maxDelay: 1, maxAttempts: 50 }, circuit: { failures: 4, failureRatio: 0.5, window: '1m', probeInterval: '1h' } } },
    });
    opened.push(egress);
    const seen = recordEvents(egress);
    for (let n = 0; n < 10; n++) egress.send.http({ url: `${failing.origin}/hook`, data: { n } });
    await until(() => seen.some((entry) => entry.name === 'paused'), 'paused by the ratio');
    // 503, 200, 503, 200, 503: three failures in five, never two in a row.
    expect(seen.find((entry) => entry.name === 'paused')!.event).toMatchObject({ failures: 3 });
    expect(await egress.partitions()).toEqual([expect.objectContaining({ partition: failing.origin, state: 'paused' })]);
  });

  test('disables a partition after disableAfter failed deliveries; egress.enable puts it back and its events go out', async () => {
    const receiver = flaky(failing);
    const egress = createEgress({
      destinations: [http()],
      logger: silentLogger,
      policies: { http: { concurrency: 1, retry: { initialDelay: 1, maxDelay: 1 }, circuit: { failures: 2, probeInterval: 5, disableAfter: { failures: 5 } } } },
    });
    opened.push(egress);
    const seen = recordEvents(egress);
    for (let n = 0; n < 3; n++) egress.send.http({ url: `${failing.origin}/hook`, data: { n } });
    await until(() => seen.some((entry) => entry.name === 'disabled'), 'disabled');
    const requestsWhenDisabled = failing.requests.length;
    expect(seen.find((entry) => entry.name === 'disabled')!.event).toMatchObject({ destination: 'http', partition: failing.origin, failures: 5, by: 'circuit' });
    expect(await egress.partitions()).toEqual([expect.objectContaining({ partition: failing.origin, state: 'disabled', failures: 5 })]);

    // A disabled partition takes no probes: another origin's event is delivered, this one gets nothing.
    egress.send.http({ url: `${healthy.origin}/hook`, data: { n: 99 } });
    await until(() => healthy.requests.length === 1, 'the other origin delivered');
    expect(failing.requests.length).toBe(requestsWhenDisabled);

    receiver.down = false;
    expect(await egress.enable('http', failing.origin)).toBe(1);
    await egress.flush();
    expect(seen.filter((entry) => entry.name === 'resumed')).toEqual([{ name: 'resumed', event: { destination: 'http', partition: failing.origin, by: 'enable' } }]);
    expect(seen.filter((entry) => entry.name === 'dead')).toEqual([]);
    expect(await egress.partitions()).toEqual([]);
  });

  test('egress.disable holds a partition back by hand and egress.enable lets it go', async () => {
    const egress = createEgress({ destinations: [http()], logger: silentLogger });
    opened.push(egress);
    const seen = recordEvents(egress);
    await egress.ready();
    expect(await egress.disable('http', healthy.origin, 'receiver migrating')).toBe(true);
    expect(await egress.disable('http', healthy.origin)).toBe(false);
    egress.send.http({ url: `${healthy.origin}/hook`, data: { n: 1 } });
    egress.send.http({ url: `${failing.origin}/hook`, data: { n: 2 } });
    await until(() => failing.requests.length === 1, 'the other origin delivered');
    expect(healthy.requests).toHaveLength(0);
    const [stats] = await egress.stats();
    expect(stats!.partitions.find((partition) => partition.partition === healthy.origin)).toMatchObject({ waiting: 1, state: 'disabled' });
    expect(seen).toEqual([{ name: 'disabled', event: { destination: 'http', partition: healthy.origin, failures: 0, reason: 'receiver migrating', by: 'disable' } }]);
    expect(await egress.enable('http')).toBe(1);
    await egress.flush();
    expect(healthy.requests).toHaveLength(1);
    await expect(egress.enable('nowhere')).rejects.toThrow(/no destination is named "nowhere"/);
  });

  test('refuses a circuit policy with a clear error naming the key', () => {
    expect(() => createEgress({ destinations: [http()], policies: { http: { circuit: { failures: 0 } } } })).toThrow(/policies\.http\.circuit\.failures.*positive integer/);
    expect(() => createEgress({ destinations: [http()], policies: { http: { circuit: { failureRatio: 2 } } } })).toThrow(/policies\.http\.circuit\.failureRatio/);
    expect(() => createEgress({ destinations: [http()], policies: { http: { circuit: { disableAfter: { count: 3 } as never } } } })).toThrow(/policies\.http\.circuit\.disableAfter/);
    expect(() => createEgress({ destinations: [http()], policies: { http: { circuit: { probe: '1s' } as never } } })).toThrow(/unknown key "probe"/);
  });
});

describe('alerts', () => {
  const secret = 'sk_live_abcdefghijklmnop';

  test('an outage of dead letters gives one alert through the chat destination, grouped, with no secret in it', async () => {
    failing.answer((_request, response) => {
      response.statusCode = 400;
      response.end(`bad request; your token was ${secret}`);
    });
    const egress = createEgress({
      destinations: [http({ headers: { authorization: `Bearer ${secret}` } }), chatWebhook],
      logger: silentLogger,
      alerts: [{ on: 'dead', send: { destination: 'chat', input: { url: `${chat.origin}/incoming`, text: 'egress: {{summary}} ({{reason}})', alert: '{{alert}}' } }, every: '1h' }],
    });
    opened.push(egress);
    for (let n = 0; n < 50; n++) egress.send.http({ url: `${failing.origin}/hook`, data: { n } });
    await egress.flush();
    // The alert was sent as the first events died; a second flush waits for its delivery.
    await egress.flush();
    expect(chat.requests).toHaveLength(1);
    const body = chat.requests[0]!.body.toString();
    expect(body).not.toContain(secret);
    const sent = JSON.parse(body) as { text: string; alert: Alert };
    expect(sent.text).toMatch(/^egress: \d+ events? of http \(partition http:\/\/127\.0\.0\.1:\d+\) dead-lettered \(.*400 Bad Request/);
    expect(sent.alert).toMatchObject({ kind: 'dead', destination: 'http', partitions: [failing.origin] });
  });

  test('what happens within the window is summed into the next alert', async () => {
    failing.answer((_request, response) => {
      response.statusCode = 400;
      response.end();
    });
    const alerts: Alert[] = [];
    const egress = createEgress({
      destinations: [http()],
      logger: silentLogger,
      alerts: [{ on: 'dead', send: (alert) => void alerts.push(alert), every: '200ms' }],
    });
    opened.push(egress);
    for (let n = 0; n < 30; n++) egress.send.http({ url: `${failing.origin}/hook`, data: { n } });
    await until(() => alerts.reduce((total, alert) => total + alert.count, 0) === 30, 'every dead letter counted in an alert');
    expect(alerts.length).toBeLessThanOrEqual(3);
    expect(alerts[0]!.firstAt).toBeLessThanOrEqual(alerts.at(-1)!.lastAt);
  });

  test('an alert about the destination alerts go through is not sent through it', async () => {
    failing.answer((_request, response) => {
      response.statusCode = 400;
      response.end();
    });
    const warnings: string[] = [];
    const egress = createEgress({
      destinations: [http()],
      logger: { ...silentLogger, warn: (_fields, message) => void warnings.push(message) },
      // Alerts about http go through http itself, to a receiver that refuses them too.
      alerts: [{ on: 'dead', send: { destination: 'http', input: { url: `${failing.origin}/alerts`, data: '{{alert}}' } } }],
    });
    opened.push(egress);
    egress.send.http({ url: `${failing.origin}/hook`, data: { n: 1 } });
    await egress.flush();
    await egress.flush();
    expect(failing.requests.map((request) => request.url)).toEqual(['/hook']);
    expect(warnings).toEqual([expect.stringMatching(/alerts\[0\] is about http, which it sends through: not sent/)]);
  });

  test('alerts when the oldest waiting event passes an age', async () => {
    const alerts: Alert[] = [];
    const egress = createEgress({
      destinations: [http()],
      logger: silentLogger,
      alerts: [{ on: { oldestWaiting: '50ms' }, send: (alert) => void alerts.push(alert) }],
    });
    opened.push(egress);
    await egress.ready();
    await egress.disable('http', healthy.origin);
    egress.send.http({ url: `${healthy.origin}/hook`, data: { n: 1 } });
    await until(() => alerts.length > 0, 'an age alert');
    expect(alerts[0]).toMatchObject({ kind: 'oldestWaiting', destination: 'http', partitions: [healthy.origin], count: 1 });
  });

  test('refuses rules that name no registered destination or an unknown trigger', () => {
    expect(() => createEgress({ destinations: [http()], alerts: [{ on: 'dead', send: { destination: 'pager' } }] })).toThrow(/alerts\[0\]\.send\.destination.*no destination is named "pager"/);
    expect(() => createEgress({ destinations: [http()], alerts: [{ on: 'late' as never, send: () => {} }] })).toThrow(/alerts\[0\]\.on/);
  });
});
