import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEgress, silentLogger } from '@egress/core';
import { testDatabaseUrl } from '@egress/testkit';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../src/index.js';
import { auditModule, eventually, exited, folderWith, postgresAuditConfig, postgresSchemaForFile, spawnEgress } from './helpers.js';

const postgresUrl = testDatabaseUrl('postgres');

describe.skipIf(!postgresUrl)('egress worker with a PostgreSQL store', () => {
  const schema = postgresSchemaForFile(postgresUrl!, 'egress_cli_test');

  test('two workers share one queue: every event delivered, none twice, both stop on SIGTERM', async () => {
    const folder = folderWith({});
    const auditFile = join(folder, 'audit.jsonl');
    const file = join(folder, 'egress.config.yaml');
    postgresAuditConfig(file, schema, auditFile);
    const environment = { EGRESS_PG_URL: postgresUrl! };
    const workers = [spawnEgress(['worker', '-c', file], { environment }), spawnEgress(['worker', '-c', file], { environment })];
    try {
      for (const worker of workers) await eventually(() => worker.output().stderr.includes('delivering to audit from the postgres store'), 30_000, () => worker.output().stderr);
      const producer = createEgress({ ...(await loadConfig(file, { environment })), role: 'producer', logger: silentLogger });
      const send = producer.send as Record<string, (input: unknown) => { committed(): Promise<void> }>;
      await Promise.all(Array.from({ length: 60 }, (_, n) => send.audit!({ message: `event ${n}`, n }).committed()));
      await producer.close();

      const lines = () => (existsSync(auditFile) ? readFileSync(auditFile, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { id: string; n: number }) : []);
      await eventually(() => lines().length >= 60, 30_000, () => `60 deliveries, got ${lines().length}`);
      for (const worker of workers) worker.kill('SIGTERM');
      expect(await Promise.all(workers.map(exited))).toEqual([0, 0]);
      expect(new Set(lines().map((line) => line.n)).size).toBe(60);
      expect(lines()).toHaveLength(60);
      const delivered = workers.map((worker) => Number(/stopped \(delivered (\d+)/.exec(worker.output().stderr)?.[1]));
      expect(delivered[0]! + delivered[1]!).toBe(60);
    } finally {
      for (const worker of workers) worker.kill('SIGKILL');
    }
  }, 90_000);
});
