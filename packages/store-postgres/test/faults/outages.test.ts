import { afterAll, describe, expect, test } from 'vitest';
import { dropSchemas, postgresUrl, randomSchema } from '../postgres-test-schema.js';
import { missing, runLoad, sleep, unexplainedDuplicates, type LoadOutcome } from './fault-harness.js';

const schemas = new Set<string>();

function schema(): string {
  const name = randomSchema();
  schemas.add(name);
  return name;
}

/** What every scenario promises: nothing accepted is lost, repeats are redeliveries of one batch, no worker died. */
function expectNothingLost(outcome: LoadOutcome, workers: number): void {
  expect(outcome.accepted.size).toBeGreaterThan(0);
  // Every send that did not throw and every run that resolved counts as accepted; nothing else.
  expect(outcome.accepted.size).toBe(outcome.sent - outcome.sendRefused - outcome.runRejected);
  expect(missing(outcome)).toEqual([]);
  expect(unexplainedDuplicates(outcome.deliveries)).toEqual([]);
  expect(outcome.workersAlive).toBe(workers);
  expect(outcome.exitCodes).toEqual(Array.from({ length: workers + 1 }, () => 0));
}

// The scenarios use their own schema, proxy and sink each, so they run side by side.
describe.skipIf(!postgresUrl).concurrent('postgres store under outages, with a producer process and worker processes', () => {
  afterAll(() => dropSchemas(schemas));

  test('started while PostgreSQL is down: sends are accepted, and once it is up the workers deliver all of them without a restart', async () => {
    const outcome = await runLoad(
      {
        workers: 2,
        rate: 100,
        startDown: true,
        fault: async ({ proxy }) => {
          await sleep(3000);
          proxy.restore();
          await sleep(2000);
        },
      },
      schema(),
    );
    expectNothingLost(outcome, 2);
    // Sends made before PostgreSQL answered were accepted, not refused.
    expect(outcome.sendRefused).toBe(0);
  }, 120_000);

  test('a 5 s outage (connections cut, new ones refused) under steady load loses no accepted event and no worker', async () => {
    const outcome = await runLoad(
      {
        workers: 2,
        rate: 100,
        fault: async ({ proxy }) => {
          await sleep(2000);
          proxy.refuse();
          await sleep(5000);
          proxy.restore();
          await sleep(2000);
        },
      },
      schema(),
    );
    expectNothingLost(outcome, 2);
    expect(outcome.sendRefused).toBe(0);
  }, 120_000);

  test('a 30 s outage (the network blackholed: connections hang) under steady load loses no accepted event and no worker', async () => {
    const outcome = await runLoad(
      {
        workers: 2,
        rate: 100,
        fault: async ({ proxy }) => {
          await sleep(2000);
          proxy.blackhole();
          await sleep(30_000);
          proxy.restore();
          await sleep(2000);
        },
      },
      schema(),
    );
    expectNothingLost(outcome, 2);
    expect(outcome.sendRefused).toBe(0);
    // The sends made during the outage (half of 30 s at 100 events/s) waited in the commit buffer.
    expect(outcome.accepted.size).toBeGreaterThan(1500);
  }, 150_000);
});
