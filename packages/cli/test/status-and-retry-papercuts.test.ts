import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEgress, silentLogger } from '@egress/core';
import { expect, test } from 'vitest';
import { loadConfig } from '../src/index.js';
import { auditModule, folderWith, runEgress } from './helpers.js';

function queueFolder(store = 'store: { kind: sqlite, path: queue.db }') {
  const folder = folderWith({});
  const file = join(folder, 'egress.config.yaml');
  writeFileSync(file, `${store}\ndestinations:\n  audit: { module: ${auditModule}, file: '\${env:AUDIT_FILE}' }\n`);
  return { folder, file, environment: { AUDIT_FILE: join(folder, 'audit.jsonl'), QUEUE_FILE: join(folder, 'queue.db') } };
}

test('egress status reads the queue with none of the destinations\' secrets set', async () => {
  const queue = queueFolder();
  const config = await loadConfig(queue.file, { environment: queue.environment });
  const producer = createEgress({ ...config, role: 'producer', logger: silentLogger });
  const send = producer.send as Record<string, (input: unknown) => { committed(): Promise<void> }>;
  await Promise.all([1, 2, 3].map((n) => send.audit!({ message: `event ${n}`, n }).committed()));
  await producer.close();

  const status = await runEgress(['status', '-c', queue.file, '--json'], { environment: {} });
  expect(status.stderr).toBe('');
  expect(status.code).toBe(0);
  expect(JSON.parse(status.stdout)).toEqual([expect.objectContaining({ destination: 'audit', waiting: 3 })]);
  // Commands that deliver or show payloads still need every secret.
  const validate = await runEgress(['validate', '-c', queue.file], { environment: {} });
  expect(validate.code).toBe(2);
  expect(validate.stdout).toContain('environment variable AUDIT_FILE is not set');
});

test('egress status still needs the secrets of the store itself', async () => {
  const queue = queueFolder("store: { kind: sqlite, path: '${env:QUEUE_FILE}' }");
  const status = await runEgress(['status', '-c', queue.file], { environment: {} });
  expect(status.code).toBe(2);
  expect(status.stderr).toContain('store.path: environment variable QUEUE_FILE is not set');
  expect(status.stderr).not.toContain('AUDIT_FILE');
});

test('egress dead retry and purge name each id that is no dead letter, and fail', async () => {
  const queue = queueFolder();
  const retry = await runEgress(['dead', 'retry', '-c', queue.file, '0193aaaa-0000-7000-8000-000000000001'], { environment: queue.environment });
  expect(retry.stderr).toBe('egress dead retry: no dead letter with id 0193aaaa-0000-7000-8000-000000000001\n');
  expect(retry.stdout).toBe('0 dead letters back in the queue.\n');
  expect(retry.code).toBe(1);
  const purge = await runEgress(['dead', 'purge', '-c', queue.file, '--yes', 'no-such-id', 'another-id'], { environment: queue.environment });
  expect(purge.stderr).toBe('egress dead purge: no dead letter with id no-such-id\negress dead purge: no dead letter with id another-id\n');
  expect(purge.code).toBe(1);
});

test('a missing config file points at the configuration guide by its address, not at a file no package ships', async () => {
  const folder = folderWith({});
  const previous = process.cwd();
  process.chdir(folder);
  try {
    const result = await runEgress(['status']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('(see https://github.com/egress-dev/egress/blob/main/docs/configuration.md)');
    expect(result.stderr).not.toMatch(/see docs\//);
  } finally {
    process.chdir(previous);
  }
});
