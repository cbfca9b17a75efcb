import { appendFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineDestination } from '@egress/core';
import { expect, test } from 'vitest';
import { z } from 'zod';
import { destinationTestSuite } from '../src/index.js';

test('the destination suite builds one fresh destination per test, as createDestination promises', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'egress-testkit-')), 'events.jsonl');
  let created = 0;
  let started = 0;
  const bodies = new Map<string, () => Promise<void>>();
  destinationTestSuite((name, body) => void bodies.set(name, body), {
    createDestination: () => {
      created += 1;
      return defineDestination({
        name: 'file',
        input: z.strictObject({ index: z.number().int() }),
        start: () => void (started += 1),
        async deliver(batch) {
          const written = new Set(existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { id: string }).id) : []);
          appendFileSync(path, batch.events.filter((event) => !written.has(event.id)).map((event) => `${JSON.stringify({ id: event.id, index: event.payload.index })}\n`).join(''));
        },
      });
    },
    input: (index) => ({ index }),
    arrived: async () => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { index: number }).index) : []),
  });
  expect(bodies.size).toBeGreaterThan(4);
  for (const [name, body] of bodies) {
    created = 0;
    started = 0;
    await body();
    expect(created, name).toBe(1);
    expect(started, name).toBeLessThanOrEqual(1);
  }
});
