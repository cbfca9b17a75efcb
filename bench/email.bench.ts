// Email through Egress beside plain nodemailer, both against the same in-process SMTP server on
// loopback: the baseline sends every message straight through a pooled transport; Egress validates,
// queues (memory store) and delivers the same messages; digest mode sends the same events as
// digests of 100. The ratio is what the engine costs per message at SMTP speed.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createEgress, memoryStore, silentLogger } from '@egress/core';
import { email } from '@egress/email';
import { startSmtpServer } from '../adapters/email/test/smtp-test-server.js';

// nodemailer is a dependency of @egress/email, not of the benchmarks: resolve it from there.
interface Nodemailer {
  createTransport(options: object): { sendMail(message: object): Promise<unknown>; close(): void };
}
const nodemailer = createRequire(new URL('../adapters/email/package.json', import.meta.url))('nodemailer') as Nodemailer;

const messages = Number(process.env.MESSAGES ?? 2000);
const connections = 5;
const server = await startSmtpServer();
const inputs = Array.from({ length: messages }, (_, index) => ({ subject: `Order #${index}`, text: `Order ${index}: 3 items, EUR ${(index * 1.5).toFixed(2)}` }));

async function baseline(): Promise<number> {
  server.reset();
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: server.port, pool: true, maxConnections: connections });
  const started = performance.now();
  await Promise.all(inputs.map((input) => transport.sendMail({ from: 'alerts@egress.test', to: 'owner@egress.test', ...input })));
  await server.waitForMessages(messages);
  const elapsed = performance.now() - started;
  transport.close();
  return elapsed;
}

async function throughEgress(digest: boolean): Promise<number> {
  server.reset();
  const egress = createEgress({
    destinations: [email({ smtp: { host: '127.0.0.1', port: server.port, maxConnections: connections }, from: 'alerts@egress.test', to: 'owner@egress.test', digest })],
    store: memoryStore({ maxEvents: messages + 1 }),
    logger: silentLogger,
  });
  await egress.ready();
  const started = performance.now();
  for (const input of inputs) egress.send.email(input);
  await egress.flush();
  const elapsed = performance.now() - started;
  await egress.close();
  const expected = digest ? Math.ceil(messages / 100) : messages;
  if (server.received.length !== expected) throw new Error(`the server received ${server.received.length} messages, expected ${expected}`);
  return elapsed;
}

// One warm-up round each, then the measured round.
await baseline();
await throughEgress(false);
const baselineMs = await baseline();
const egressMs = await throughEgress(false);
const digestMs = await throughEgress(true);
await server.close();

const rate = (milliseconds: number) => Math.round(messages / (milliseconds / 1000));
const result = {
  messages,
  connections,
  baseline: { milliseconds: Math.round(baselineMs), eventsPerSecond: rate(baselineMs) },
  egress: { milliseconds: Math.round(egressMs), eventsPerSecond: rate(egressMs) },
  egressDigest: { milliseconds: Math.round(digestMs), eventsPerSecond: rate(digestMs), emails: Math.ceil(messages / 100) },
  ratio: Number((rate(egressMs) / rate(baselineMs)).toFixed(4)),
};
console.table({
  'nodemailer pool, one sendMail per message (baseline)': result.baseline,
  'egress $send.email, one message per event': result.egress,
  'egress $send.email, digest mode (100 events per email)': { milliseconds: result.egressDigest.milliseconds, eventsPerSecond: result.egressDigest.eventsPerSecond },
});
console.log(`egress runs at ${(result.ratio * 100).toFixed(2)} % of the baseline's rate (${result.egress.eventsPerSecond} vs ${result.baseline.eventsPerSecond} messages/s); digest mode handles ${result.egressDigest.eventsPerSecond} events/s in ${result.egressDigest.emails} emails`);
writeFileSync(new URL('./results/email.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
