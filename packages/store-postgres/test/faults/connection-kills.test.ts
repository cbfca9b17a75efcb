import { afterAll, describe, expect, test } from 'vitest';
import { dropSchemas, postgresUrl, randomSchema } from '../postgres-test-schema.js';
import { missing, runLoad, sleep, terminateBackends, unexplainedDuplicates } from './fault-harness.js';

const schemas = new Set<string>();

describe.skipIf(!postgresUrl)('postgres store when PostgreSQL ends its connections', () => {
  afterAll(() => dropSchemas(schemas));

  test('workers survive pg_terminate_backend of all their connections, again and again, and every accepted event arrives', async () => {
    const schema = randomSchema();
    schemas.add(schema);
    let terminated = 0;
    const outcome = await runLoad(
      {
        workers: 2,
        rate: 150,
        fault: async ({ proxy, applicationName }) => {
          for (let round = 0; round < 8; round++) {
            await sleep(700);
            // Claims, settlements, LISTEN and enqueues of this test's processes, ended mid-way (57P01).
            terminated += await terminateBackends(applicationName);
            if (round === 4) proxy.cut();
          }
          await sleep(1500);
        },
      },
      schema,
    );
    expect(terminated).toBeGreaterThan(8);
    expect(outcome.accepted.size).toBe(outcome.sent - outcome.sendRefused - outcome.runRejected);
    expect(outcome.sendRefused).toBe(0);
    expect(missing(outcome)).toEqual([]);
    expect(unexplainedDuplicates(outcome.deliveries)).toEqual([]);
    expect(outcome.workersAlive).toBe(2);
    expect(outcome.exitCodes).toEqual([0, 0, 0]);
  }, 120_000);
});
