import { appendFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineDestination } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { destinationTestSuite } from '../src/index.js';

/**
 * A small custom destination, as a user would write one: appends events to a JSON-lines file and
 * skips event ids already written, so a retried batch is stored once.
 */
function jsonLinesFile(path: string) {
  return defineDestination({
    name: 'file',
    input: z.strictObject({ record: z.strictObject({ index: z.number().int(), note: z.string().optional() }) }),
    limits: { maxEvents: 1000 },
    async deliver(batch) {
      const written = new Set(existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { id: string }).id) : []);
      const lines = batch.events.filter((event) => !written.has(event.id)).map((event) => `${JSON.stringify({ id: event.id, ...event.payload.record })}\n`);
      appendFileSync(path, lines.join(''));
    },
  });
}

describe('destination conformance, run on a custom destination writing to a real file', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'egress-testkit-')), 'events.jsonl');
  destinationTestSuite(test, {
    createDestination: () => jsonLinesFile(path),
    input: (index) => ({ record: { index, note: 'hello' } }),
    arrived: async () => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { index: number }).index) : []),
    invalidInputs: [
      { input: { record: { index: 'one' } }, path: 'record.index' },
      { input: {}, path: 'record' },
    ],
  });
});

describe('the destination suite catches broken destinations', () => {
  /** Collects the suite's tests instead of registering them, to run them by hand. */
  function collect(options: Parameters<typeof destinationTestSuite>[1]) {
    const bodies = new Map<string, () => Promise<void>>();
    destinationTestSuite((name, body) => void bodies.set(name, body), options);
    return bodies;
  }

  test('a destination that writes a retried batch twice fails the redelivery test', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'egress-testkit-')), 'events.jsonl');
    const careless = { ...jsonLinesFile(path), deliver: async (batch: { events: readonly { payload: { record: { index: number } } }[] }) => {
      appendFileSync(path, batch.events.map((event) => `${JSON.stringify(event.payload.record)}\n`).join(''));
    } };
    const bodies = collect({
      createDestination: () => careless as never,
      input: (index) => ({ record: { index } }),
      arrived: async () => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { index: number }).index),
    });
    const redelivery = [...bodies.entries()].find(([name]) => name.includes('delivered twice'))![1];
    await expect(redelivery()).rejects.toThrow(/arrived after a repeated delivery/);
  });

  test('a destination that loses events fails the delivery test', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'egress-testkit-')), 'events.jsonl');
    const lossy = { ...jsonLinesFile(path), deliver: async () => {} };
    const bodies = collect({ createDestination: () => lossy as never, input: (index) => ({ record: { index } }), arrived: async () => [] });
    const delivery = [...bodies.entries()].find(([name]) => name.startsWith('delivers what is sent'))![1];
    await expect(delivery()).rejects.toThrow(/\[destination conformance\] arrived/);
  });
});
