import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEgress, silentLogger } from '@egress/core';
import { testDatabaseUrl } from '@egress/testkit';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../src/index.js';
import { auditModule, closedPort, eventually, exited, folderWith, postgresAuditConfig, postgresSchemaForFile, relay, runEgress, spawnEgress } from './helpers.js';

const postgresUrl = testDatabaseUrl('postgres');

describe.skipIf(!postgresUrl)('egress worker started before its PostgreSQL is reachable', () => {
  const schema = postgresSchemaForFile(postgresUrl!, 'egress_cli_start_down');

  test('waits without exiting, says so once, delivers once the database is up, and does the same when it goes away later', async () => {
    const folder = folderWith({});
    const auditFile = join(folder, 'audit.jsonl');
    const file = join(folder, 'egress.config.yaml');
    postgresAuditConfig(file, schema, auditFile);
    const database = new URL(postgresUrl!);
    const port = await closedPort();
    const viaRelay = new URL(postgresUrl!);
    viaRelay.hostname = '127.0.0.1';
    viaRelay.port = String(port);
    const worker = spawnEgress(['worker', '-c', file], { environment: { EGRESS_PG_URL: viaRelay.href } });
    let opened: { close(): Promise<void> } | undefined;
    try {
      const stderr = () => worker.output().stderr;
      await eventually(() => /the postgres store is unreachable/.test(stderr()), 30_000, stderr);
      // Several attempts fail meanwhile (backoff from 50 ms); the wait is still said once.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect(worker.exitCode).toBeNull();
      expect(stderr().match(/store is unreachable/g)).toHaveLength(1);
      expect(stderr()).not.toMatch(/delivering to audit/);

      opened = await relay(port, { host: database.hostname, port: Number(database.port || 5432) });
      const producer = createEgress({ ...(await loadConfig(file, { environment: { EGRESS_PG_URL: postgresUrl! } })), role: 'producer', logger: silentLogger });
      const send = producer.send as Record<string, (input: unknown) => { committed(): Promise<void> }>;
      await Promise.all(Array.from({ length: 20 }, (_, n) => send.audit!({ message: `event ${n}`, n }).committed()));
      await producer.close();

      const lines = () => (existsSync(auditFile) ? readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { n: number }) : []);
      await eventually(() => lines().length >= 20, 30_000, () => `20 deliveries, got ${lines().length}; worker said:\n${stderr()}`);
      expect(new Set(lines().map((line) => line.n)).size).toBe(20);
      expect(stderr().match(/the postgres store is reachable again after \d+\.\d s; delivering/g)).toHaveLength(1);
      expect(stderr().match(/store is unreachable/g)).toHaveLength(1);
      expect(stderr()).toMatch(/delivering to audit from the postgres store/);

      // The database goes away again under a running worker (every connection cut), then returns.
      await opened.close();
      opened = undefined;
      await eventually(() => (stderr().match(/store is unreachable/g) ?? []).length === 2, 30_000, stderr);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(worker.exitCode).toBeNull();
      expect(stderr().match(/store is unreachable/g)).toHaveLength(2);
      opened = await relay(port, { host: database.hostname, port: Number(database.port || 5432) });
      const later = createEgress({ ...(await loadConfig(file, { environment: { EGRESS_PG_URL: postgresUrl! } })), role: 'producer', logger: silentLogger });
      const sendLater = later.send as Record<string, (input: unknown) => { committed(): Promise<void> }>;
      await Promise.all(Array.from({ length: 10 }, (_, index) => sendLater.audit!({ message: `event ${20 + index}`, n: 20 + index }).committed()));
      await later.close();
      await eventually(() => new Set(lines().map((line) => line.n)).size >= 30, 30_000, () => `30 distinct deliveries, got ${new Set(lines().map((line) => line.n)).size}; worker said:\n${stderr()}`);
      expect(stderr().match(/the postgres store is reachable again after \d+\.\d s/g)).toHaveLength(2);
      worker.kill('SIGTERM');
      expect(await exited(worker)).toBe(0);
    } finally {
      worker.kill('SIGKILL');
      await opened?.close();
    }
  }, 90_000);

  test('stops gracefully on SIGTERM while it still waits for the store, exit code 0', async () => {
    const folder = folderWith({});
    const file = join(folder, 'egress.config.yaml');
    postgresAuditConfig(file, schema, join(folder, 'audit.jsonl'));
    const unreachable = new URL(postgresUrl!);
    unreachable.hostname = '127.0.0.1';
    unreachable.port = String(await closedPort());
    const worker = spawnEgress(['worker', '-c', file], { environment: { EGRESS_PG_URL: unreachable.href } });
    try {
      const stderr = () => worker.output().stderr;
      await eventually(() => /the postgres store is unreachable/.test(stderr()), 30_000, stderr);
      worker.kill('SIGTERM');
      expect(await exited(worker)).toBe(0);
      expect(stderr()).toMatch(/egress worker: SIGTERM before the store opened: stopping/);
      expect(stderr()).toMatch(/egress worker: stopped/);
      expect(stderr()).not.toMatch(/delivering to audit/);
    } finally {
      worker.kill('SIGKILL');
    }
  }, 60_000);

  test('egress status says where the store stands: unreachable with the reason (exit 1), or connected under the table', async () => {
    const folder = folderWith({});
    const file = join(folder, 'egress.config.yaml');
    writeFileSync(
      file,
      `store:\n  kind: postgres\n  connectionString: \${env:EGRESS_PG_URL}\n  schema: ${schema}\ndestinations:\n  audit:\n    module: ${auditModule}\n    file: ${join(folder, 'audit.jsonl')}\n`,
    );
    const down = new URL(postgresUrl!);
    down.hostname = '127.0.0.1';
    down.port = String(await closedPort());
    const unreachable = await runEgress(['status', '-c', file], { environment: { EGRESS_PG_URL: down.href } });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stdout).toMatch(/^store: postgres unreachable for \S+ \(since \d{4}-\d\d-\d\dT[^)]+\): .*ECONNREFUSED/m);
    const json = await runEgress(['status', '-c', file, '--json'], { environment: { EGRESS_PG_URL: down.href } });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ store: expect.objectContaining({ kind: 'postgres', state: 'unreachable', buffered: 0 }) });

    const reachable = await runEgress(['status', '-c', file], { environment: { EGRESS_PG_URL: postgresUrl! } });
    expect(reachable.code).toBe(0);
    expect(reachable.stdout).toMatch(/^audit +- +0 +0 +\d+ +0 +0 +-$/m);
    expect(reachable.stdout).toMatch(/^store: postgres connected since \d{4}-/m);
    const reachableJson = await runEgress(['status', '-c', file, '--json'], { environment: { EGRESS_PG_URL: postgresUrl! } });
    expect(JSON.parse(reachableJson.stdout)).toEqual([expect.objectContaining({ destination: 'audit', buffered: 0, lost: 0, store: expect.objectContaining({ state: 'connected' }) })]);
  }, 60_000);
});
