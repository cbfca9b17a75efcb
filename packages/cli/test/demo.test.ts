import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import type { DemoSummary } from '@egress/demo';
import { exited, repositoryRoot, spawnEgress } from './helpers.js';

const types = ['http', 'email', 's3', 'sql', 'sse'];
const installed = types.filter((type) => existsSync(join(repositoryRoot, 'adapters', type, 'package.json')));
const sqliteInstalled = existsSync(join(repositoryRoot, 'packages', 'store-sqlite', 'package.json'));

test('egress demo runs the shop through every installed destination and reports what arrived where', async () => {
  const demo = spawnEgress(['demo', '--json', '--orders', '14']);
  const code = await exited(demo);
  const { stdout, stderr } = demo.output();
  expect(installed.length).toBeGreaterThan(0);
  expect(code, stderr).toBe(0);
  expect(stderr).toContain(sqliteInstalled ? 'Queue: SQLite store at' : 'Queue: memory store (@egress/store-sqlite is not installed');
  expect(stderr, 'the AWS SDK stays quiet about Node versions').not.toContain('NodeVersionSupportWarning');
  expect(stderr).toMatch(/done {2}delivered \d+\/\d+ {2}retried \d+ {2}dead \d+/);
  const summary = JSON.parse(stdout) as DemoSummary;
  expect(summary.store).toBe(sqliteInstalled ? 'sqlite' : 'memory');
  expect(Object.keys(summary.destinations).sort()).toEqual([...installed].sort());
  for (const [name, entry] of Object.entries(summary.destinations)) {
    expect(entry.latency, name).toEqual({ p50: expect.any(Number), p99: expect.any(Number) });
  }
  const arrived = (type: string) => summary.destinations[type]?.arrived;
  if (installed.includes('http')) {
    // Orders 1002, 1008 and 1014 are answered 503 once (every sixth order number); 1013 is refused for good.
    expect(arrived('http')).toEqual({ requests: 17, accepted: 13, answered503: 3, answered422: 1, uniqueOrders: 13 });
    expect(summary.destinations.http).toMatchObject({ delivered: 13, dead: 1 });
    expect(summary.deadLetters).toEqual([{ id: expect.any(String), destination: 'http', error: expect.stringContaining('422') }]);
  }
  if (installed.includes('email')) {
    // Pooled SMTP connections deliver side by side, so the order of arrival varies.
    const email = arrived('email') as { emails: number; recipients: number; subjects: string[] };
    expect(email).toMatchObject({ emails: 14, recipients: 5 });
    for (const subject of email.subjects) expect(subject).toMatch(/^Your receipt for order #10(0\d|1[0-4])$/);
  }
  if (installed.includes('s3')) {
    const s3 = arrived('s3') as { objects: number; keys: string[] };
    expect(s3.objects).toBeGreaterThan(0);
    for (const key of s3.keys) expect(key).toMatch(/^orders\/created\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f]{64}\.gz$/);
  }
  if (installed.includes('sql')) expect(arrived('sql')).toMatchObject({ table: 'orders', rows: 14 });
  if (installed.includes('sse')) expect(arrived('sse')).toMatchObject({ subscriberEvents: 14 });
}, 90_000);

test('egress demo prints a summary table with latencies for people', async () => {
  const demo = spawnEgress(['demo', '--orders', '3']);
  expect(await exited(demo), demo.output().stderr).toBe(0);
  const { stdout } = demo.output();
  expect(stdout).toMatch(/^3 orders through \d destinations? with the \w+ store in [\d.]+ s$/m);
  expect(stdout).toMatch(/^DESTINATION +DELIVERED +FAILED ATTEMPTS +DEAD +LATENCY P50 +P99$/m);
  expect(stdout).toContain('What arrived where:');
}, 90_000);
