// Installed from the packed tarballs by scripts/release/packed-install.mjs, type-checked with
// `moduleResolution: nodenext`, and run once as ESM and once as CommonJS. It sends through all five
// destinations to servers on loopback and checks what arrived; it prints one JSON line of facts.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createEgress, EgressValidationError } from '@egress/core';
import { email } from '@egress/email';
import { http } from '@egress/http';
import { openTelemetryTracing } from '@egress/opentelemetry';
import { s3 } from '@egress/s3';
import { sql } from '@egress/sql';
import { sse, subscribe, type SseEvent } from '@egress/sse';
import { sqliteStore } from '@egress/store-sqlite';
import type { DestinationSuiteOptions } from '@egress/testkit';
import { loadConfig } from '@egress/cli';
import { withEgress } from '@egress/middleware/fetch';
import type {} from '@egress/middleware';
import Database from 'better-sqlite3';
import S3rver from 's3rver';
import { SMTPServer } from 'smtp-server';

const names = ['Luke Skywalker', 'Leia Organa', 'Han Solo', 'Rey', 'Obi-Wan Kenobi'];

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`packed install: ${message}`);
}

async function main(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'egress-packed-app-'));

  const requests: { method: string; body: string }[] = [];
  const receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      requests.push({ method: request.method ?? '', body });
      response.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;

  const emails: string[] = [];
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      let raw = '';
      stream.on('data', (chunk: Buffer) => (raw += chunk.toString()));
      stream.on('end', () => {
        emails.push(raw);
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const smtpPort = (smtp.server.address() as AddressInfo).port;

  const s3Server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: join(directory, 's3'), configureBuckets: [{ name: 'packed', configs: [] }] });
  const s3Endpoint = `http://127.0.0.1:${((await s3Server.run()) as AddressInfo).port}`;

  const sqlFile = join(directory, 'sink.db');
  const stream = sse({ replay: 100 });
  const { url: streamUrl } = await stream.listen(0, '127.0.0.1');
  const received: SseEvent[] = [];
  const subscription = new AbortController();
  const listening = (async () => {
    try {
      for await (const event of subscribe(streamUrl, { channels: ['people'], signal: subscription.signal })) received.push(event);
    } catch (error) {
      if (!subscription.signal.aborted) throw error;
    }
  })();

  const egress = createEgress({
    store: sqliteStore({ path: join(directory, 'queue.db') }),
    destinations: [
      http(),
      email({ smtp: { host: '127.0.0.1', port: smtpPort, secure: false, ignoreTLS: true }, from: 'app@example.com' }),
      s3({ endpoint: s3Endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } }),
      sql({ knex: { client: 'better-sqlite3', connection: { filename: sqlFile }, useNullAsDefault: true } }),
      stream,
    ],
    policies: { s3: { batch: { maxDelay: 200 } }, sql: { batch: { maxDelay: 200 } } },
    // No OpenTelemetry SDK is registered here: tracing loads, and costs the run nothing.
    tracing: openTelemetryTracing(),
  });

  await egress.run(async ($send) => {
    for (const name of names) {
      $send.http({ method: 'POST', url, data: { name } });
      $send.s3({ bucket: 'packed', prefix: 'people/', payload: { name } });
      $send.sql({ table: 'people', payload: { name, letters: name.length } });
      $send.email({ to: 'owner@example.com', subject: `Hello ${name}`, text: `A message for ${name}` });
      $send.sse({ channel: 'people', payload: { name } });
    }
  });
  // The middleware's fetch-style wrapper: the request's event is committed before its answer.
  const handleOrder = withEgress(egress, async (request, $send) => {
    $send.http({ method: 'POST', url, data: { name: await request.text() } });
    return new Response(null, { status: 201 });
  });
  const answer = await handleOrder(new Request('http://app.example/orders', { method: 'POST', body: 'Middleware' }));
  check(answer.status === 201, `the wrapped handler answered ${answer.status}`);
  let rejected = false;
  try {
    // @ts-expect-error `body` is not an http input field: the types refuse it, and so does the run time.
    egress.send.http({ method: 'POST', url, body: 'lost' });
  } catch (error) {
    rejected = EgressValidationError.isInstance(error);
  }
  check(rejected, 'an unknown http field is refused with EgressValidationError');
  await egress.flush({ timeout: '30s' });
  const deadline = Date.now() + 5000;
  while (received.length < names.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));

  const allHttpNames = requests.map((request) => (JSON.parse(request.body) as { name: string }).name);
  const middleware = allHttpNames.filter((name) => name === 'Middleware').length;
  const httpNames = allHttpNames.filter((name) => name !== 'Middleware').sort();
  check(JSON.stringify(httpNames) === JSON.stringify([...names].sort()), `http received ${JSON.stringify(httpNames)}`);
  check(requests.every((request) => request.method === 'POST'), 'every http request is a POST');

  const listing = await (await fetch(`${s3Endpoint}/packed?list-type=2`)).text();
  const keys = [...listing.matchAll(/<Key>(.*?)<\/Key>/g)].map((match) => match[1]!);
  const s3Names: string[] = [];
  for (const key of keys) {
    const object = Buffer.from(await (await fetch(`${s3Endpoint}/packed/${key}`)).arrayBuffer());
    // The objects are stored with `Content-Encoding: gzip`, which fetch may already have undone.
    const text = object[0] === 0x1f && object[1] === 0x8b ? gunzipSync(object).toString('utf8') : object.toString('utf8');
    for (const line of text.split('\n').filter(Boolean)) s3Names.push((JSON.parse(line) as { name: string }).name);
  }
  check(keys.every((key) => /^people\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/[\d-]+-[0-9a-f]{64}\.gz$/.test(key)), `s3 keys ${keys.join(', ')}`);
  check(JSON.stringify(s3Names.sort()) === JSON.stringify([...names].sort()), `s3 objects hold ${JSON.stringify(s3Names)}`);

  const database = new Database(sqlFile, { readonly: true });
  const rows = database.prepare('select name, letters from people order by name').all() as { name: string; letters: number }[];
  database.close();
  check(JSON.stringify(rows.map((row) => row.name)) === JSON.stringify([...names].sort()), `sql rows ${JSON.stringify(rows)}`);
  check(rows.every((row) => row.letters === row.name.length), 'sql columns keep their numbers');

  const subjects = emails.map((raw) => /^Subject: (.*)$/im.exec(raw)?.[1]?.trim() ?? '').sort();
  check(JSON.stringify(subjects) === JSON.stringify(names.map((name) => `Hello ${name}`).sort()), `email subjects ${JSON.stringify(subjects)}`);

  const sseNames = received.map((event) => (event.data as { name: string }).name).sort();
  check(JSON.stringify(sseNames) === JSON.stringify([...names].sort()), `sse subscriber got ${JSON.stringify(sseNames)}`);

  await egress.close({ timeout: '5s' });
  subscription.abort();
  await listening;
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  await s3Server.close();
  rmSync(directory, { recursive: true, force: true });

  // The testkit's types resolve too: a suite input for the names above.
  const suiteInput: DestinationSuiteOptions<{ name: string }>['input'] = (index) => ({ name: names[index % names.length]! });
  const format = typeof require === 'function' && typeof module === 'object' ? 'commonjs' : 'esm';
  console.log(JSON.stringify({ format, http: httpNames.length, middleware, s3: s3Names.length, sql: rows.length, email: emails.length, sse: received.length, suiteInput: suiteInput(0).name, loadConfig: typeof loadConfig }));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
