import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createEgress, silentLogger } from '@egress/core';
import { expect, test } from 'vitest';
import { loadConfig } from '../src/index.js';
import { auditModule, eventually, exited, folderWith, runEgress, spawnEgress } from './helpers.js';

/** A SQLite queue shared by this test (the producer) and `egress` processes, as in production. */
function sharedQueue() {
  const folder = folderWith({});
  const auditFile = join(folder, 'audit.jsonl');
  const file = join(folder, 'egress.config.yaml');
  const yaml = `store: { kind: sqlite, path: queue.db }
destinations:
  audit: { module: ${auditModule}, file: '\${env:AUDIT_FILE}', strict: true }
policies:
  audit: { batch: { maxEvents: 10, maxDelay: 10ms } }
`;
  return { folder, file, auditFile, yaml, environment: { AUDIT_FILE: auditFile } };
}

async function produce(file: string, messages: string[], environment: NodeJS.ProcessEnv): Promise<void> {
  const config = await loadConfig(file, { environment });
  const producer = createEgress({ ...config, role: 'producer', logger: silentLogger });
  const send = producer.send as Record<string, (input: unknown) => { committed(): Promise<void> }>;
  await Promise.all(messages.map((message, n) => send.audit!({ message, n }).committed()));
  await producer.close();
}

const deliveredLines = (auditFile: string) => (existsSync(auditFile) ? readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean).length : 0);

test('egress worker delivers what another process enqueued in the SQLite store, then stops on SIGINT', async () => {
  const queue = sharedQueue();
  const { writeFileSync } = await import('node:fs');
  writeFileSync(queue.file, queue.yaml);
  // Enqueued while no worker runs: the events wait in the file.
  await produce(queue.file, Array.from({ length: 25 }, (_, index) => `event ${index}`), queue.environment);
  const waiting = JSON.parse((await runEgress(['status', '-c', queue.file, '--json'], { environment: queue.environment })).stdout) as { waiting: number }[];
  expect(waiting[0]!.waiting).toBe(25);

  const worker = spawnEgress(['worker', '-c', queue.file, '--report-every', '100ms'], { environment: queue.environment });
  try {
    await eventually(() => deliveredLines(queue.auditFile) === 25, 30_000, () => `25 lines in the audit file, got ${deliveredLines(queue.auditFile)}: ${worker.output().stderr}`);
    worker.kill('SIGINT');
    expect(await exited(worker)).toBe(0);
  } finally {
    worker.kill('SIGKILL');
  }
  expect(worker.output().stderr).toContain('egress worker: delivering to audit from the sqlite store');
  expect(worker.output().stderr).toContain('egress worker: stopped (delivered 25, retried 0, dead 0)');
  // The status process delivered nothing itself: the totals come from the queue file.
  const after = JSON.parse((await runEgress(['status', '-c', queue.file, '--json'], { environment: queue.environment })).stdout) as { waiting: number; inFlight: number }[];
  expect(after[0]).toMatchObject({ waiting: 0, inFlight: 0, delivered: 25, failed: 0, dead: 0 });
  const table = await runEgress(['status', '-c', queue.file], { environment: queue.environment });
  expect(table.stdout).toMatch(/^audit +- +0 +0 +25 +0 +0 +-$/m);
}, 60_000);

test('egress dead list, show, purge and retry work on the dead letters a worker left', async () => {
  const queue = sharedQueue();
  const { writeFileSync } = await import('node:fs');
  writeFileSync(queue.file, queue.yaml);
  await produce(queue.file, ['refuse', 'kept', 'refuse', `refuse, see ${queue.auditFile}`], queue.environment);
  const worker = spawnEgress(['worker', '-c', queue.file], { environment: queue.environment });
  try {
    await eventually(async () => {
      const stats = JSON.parse((await runEgress(['status', '-c', queue.file, '--json'], { environment: queue.environment })).stdout) as { dead: number }[];
      return stats[0]!.dead === 3 && deliveredLines(queue.auditFile) === 1;
    }, 30_000, () => `3 dead letters: ${worker.output().stderr}`);
    worker.kill('SIGTERM');
    expect(await exited(worker)).toBe(0);
  } finally {
    worker.kill('SIGKILL');
  }
  expect(worker.output().stderr).toMatch(/dead \[audit\] \d events? after 1 attempt: PermanentError: refused by the audit log/);

  const list = await runEgress(['dead', 'list', '-c', queue.file, '--json'], { environment: queue.environment });
  const letters = JSON.parse(list.stdout) as { id: string; payload: { message: string }; attempts: number; error: { message: string } }[];
  expect(letters).toHaveLength(3);
  // The third message holds a value the config read from the environment: every output masks it.
  expect(letters.map((letter) => [letter.payload.message, letter.error.message])).toEqual([
    ['refuse', 'refused by the audit log'],
    ['refuse', 'refused by the audit log'],
    ['refuse, see [redacted]', 'refused by the audit log'],
  ]);
  expect(list.stdout).not.toContain(queue.auditFile);
  const table = await runEgress(['dead', 'list', '-c', queue.file], { environment: queue.environment });
  expect(table.stdout).toMatch(/^ID +DESTINATION +PARTITION +ATTEMPTS +DEAD FOR +ERROR$/m);
  expect(table.stdout).toContain(`${letters[0]!.id}  audit`);

  const shown = await runEgress(['dead', 'show', letters[0]!.id, '-c', queue.file], { environment: queue.environment });
  expect(shown.code).toBe(0);
  expect(shown.stdout).toContain(`id           ${letters[0]!.id}`);
  expect(shown.stdout).toContain('error        PermanentError: refused by the audit log');
  expect(shown.stdout).toContain('"message": "refuse"');
  expect((await runEgress(['dead', 'show', '01900000-0000-7000-8000-000000000000', '-c', queue.file], { environment: queue.environment })).code).toBe(1);

  const refused = await runEgress(['dead', 'purge', '--all', '-c', queue.file], { environment: queue.environment });
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('refusing to purge 3 dead letters without --yes (no terminal to confirm on)');
  const declined = await runEgress(['dead', 'purge', '--all', '-c', queue.file], { tty: true, input: 'n\n', environment: queue.environment });
  expect(declined.code).toBe(1);
  expect(declined.stderr).toContain('Purge 3 dead letters? This cannot be undone. [y/N]');

  const one = await runEgress(['dead', 'purge', letters[0]!.id, '-c', queue.file], { environment: queue.environment });
  expect(one).toMatchObject({ code: 0, stdout: '1 dead letter purged.\n' });

  const retried = await runEgress(['dead', 'retry', '--all', '-c', queue.file, '--json'], { environment: queue.environment });
  expect(JSON.parse(retried.stdout)).toEqual({ retried: 2 });
  const status = await runEgress(['status', '-c', queue.file], { environment: queue.environment });
  // One event delivered and three refused on their only attempt, as the worker recorded them in the file.
  expect(status.stdout).toMatch(/^audit +- +2 +0 +1 +3 +0 +\d+m?s$/m);

  const unknown = await runEgress(['dead', 'retry', 'no-such-id', '-c', queue.file], { environment: queue.environment });
  expect(unknown.code).toBe(1);
}, 60_000);
