import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEgress, silentLogger } from '@egress/core';
import { expect, test } from 'vitest';
import { loadConfig } from '../src/index.js';
import { auditModule, folderWith, runEgress } from './helpers.js';

function queueFolder(extra = '') {
  const folder = folderWith({});
  const file = join(folder, 'egress.config.yaml');
  writeFileSync(
    file,
    [
      'store: { kind: sqlite, path: queue.db }',
      'destinations:',
      `  audit: { module: ${auditModule}, file: ${join(folder, 'audit.jsonl')} }`,
      `  ops: { module: ${auditModule}, export: audit, file: ${join(folder, 'ops.jsonl')} }`,
      'policies:',
      "  audit: { circuit: { failures: 3, probeInterval: '10s', disableAfter: '5d' } }",
      extra,
    ].join('\n'),
  );
  return { folder, file };
}

test('egress disable, partitions and enable: the state is kept in the store and shown to every command', async () => {
  const queue = queueFolder();
  const disable = await runEgress(['disable', 'audit', 'tenant-1', '--reason', 'receiver migrating', '-c', queue.file]);
  expect(disable.stderr).toBe('');
  expect(disable.stdout).toBe('Partition disabled.\n');
  expect((await runEgress(['disable', 'audit', 'tenant-1', '-c', queue.file, '--json'])).stdout).toBe('{"disabled":false}\n');

  const listed = await runEgress(['partitions', '-c', queue.file, '--json']);
  expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ destination: 'audit', partition: 'tenant-1', state: 'disabled', reason: 'receiver migrating' })]);
  const table = await runEgress(['partitions', '-c', queue.file]);
  expect(table.stdout).toMatch(/^DESTINATION +PARTITION +STATE +FOR +FAILURES +NEXT PROBE +REASON\naudit +tenant-1 +disabled +.* +0 +- +receiver migrating\n$/);

  const enable = await runEgress(['enable', 'audit', 'tenant-1', '-c', queue.file]);
  expect(enable.stdout).toBe('1 partition enabled.\n');
  expect(enable.code).toBe(0);
  expect((await runEgress(['partitions', '-c', queue.file])).stdout).toBe('Every partition is delivering.\n');
  const again = await runEgress(['enable', 'audit', 'tenant-1', '-c', queue.file]);
  expect(again.code).toBe(1);
});

test('egress status marks a disabled partition that holds events', async () => {
  const queue = queueFolder();
  const config = await loadConfig(queue.file);
  const producer = createEgress({ ...config, role: 'producer', logger: silentLogger });
  await producer.ready();
  await producer.disable('audit', '');
  await (producer.send as Record<string, (input: unknown) => { committed(): Promise<void> }>).audit!({ message: 'held' }).committed();
  await producer.close();
  const status = await runEgress(['status', '-c', queue.file]);
  expect(status.stdout).toMatch(/\naudit +- \(disabled\) +1 +0 /);
  const json = await runEgress(['status', '-c', queue.file, '--json']);
  expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ destination: 'audit', partitions: [expect.objectContaining({ partition: '', state: 'disabled', waiting: 1 })] }), expect.objectContaining({ destination: 'ops' })]);
});

test('egress partitions, enable and disable need only the store, not the destinations\' secrets', async () => {
  const folder = folderWith({});
  const file = join(folder, 'egress.config.yaml');
  writeFileSync(file, `store: { kind: sqlite, path: queue.db }\ndestinations:\n  audit: { module: ${auditModule}, file: '\${env:AUDIT_FILE}' }\n`);
  expect((await runEgress(['disable', 'audit', 'tenant-3', '-c', file], { environment: {} })).code).toBe(0);
  const listed = await runEgress(['partitions', '-c', file, '--json'], { environment: {} });
  expect(listed.stderr).toBe('');
  expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ partition: 'tenant-3', state: 'disabled' })]);
  expect((await runEgress(['enable', 'audit', '-c', file], { environment: {} })).stdout).toBe('1 partition enabled.\n');
});

test('egress enable and disable say what is missing, and name an unknown destination', async () => {
  const queue = queueFolder();
  const missing = await runEgress(['disable', 'audit', '-c', queue.file]);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('egress disable: expected a destination and one partition');
  const unknown = await runEgress(['enable', 'nowhere', '-c', queue.file]);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('no destination is named "nowhere" (registered: audit, ops)');
});

test('alert rules in the config file send through a configured destination', async () => {
  const queue = queueFolder("alerts:\n  - on: disabled\n    send: { destination: ops, input: { message: 'ALERT {{summary}}' } }\n    every: 1h");
  const config = await loadConfig(queue.file);
  const egress = createEgress({ ...config, logger: silentLogger });
  try {
    await egress.ready();
    await egress.disable('audit', 'tenant-2', 'by hand');
    await egress.flush();
  } finally {
    await egress.close();
  }
  const lines = readFileSync(join(queue.folder, 'ops.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { message: string });
  expect(lines).toEqual([expect.objectContaining({ message: 'ALERT audit (partition tenant-2) disabled after failing; enable it with egress enable audit' })]);
});

test('egress validate names an alert rule that sends through no configured destination', async () => {
  const queue = queueFolder('alerts:\n  - { on: dead, send: { destination: pager } }\n  - { on: late, send: { destination: ops } }');
  const validate = await runEgress(['validate', '-c', queue.file]);
  expect(validate.code).toBe(2);
  expect(validate.stdout + validate.stderr).toMatch(/alerts\[0\]\.send\.destination: no destination named "pager"/);
  expect(validate.stdout + validate.stderr).toMatch(/alerts\[1\]\.on: expected 'dead', 'paused', 'disabled' or \{ oldestWaiting: '10m' \}/);
});
