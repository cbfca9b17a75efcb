import { createEgress, EgressValidationError, memoryStore, silentLogger } from '@egress/core';
import { afterEach, describe, expect, test } from 'vitest';
import { sse } from '../src/index.js';

const engines: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((egress) => egress.close()));
});

function start() {
  const egress = createEgress({ destinations: [sse()], store: memoryStore(), logger: silentLogger, role: 'producer' });
  engines.push(egress);
  return egress;
}

describe('sse: a client body forwarded as the payload cannot take the process down', () => {
  test('a 3 KB JSON array nested 1,500 deep is refused at $send with a typed error naming the depth', async () => {
    const unhandled: unknown[] = [];
    const tripwire = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', tripwire);
    try {
      const body = JSON.parse(`${'['.repeat(1500)}${']'.repeat(1500)}`) as never;
      let refusal: unknown;
      try {
        start().send.sse({ channel: 'orders', payload: body });
      } catch (error) {
        refusal = error;
      }
      expect(EgressValidationError.isInstance(refusal)).toBe(true);
      expect((refusal as EgressValidationError).issues[0]!.message).toContain('nested deeper than 64 levels');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', tripwire);
    }
  });

  test('a payload with a throwing getter is refused naming the field, never as an asynchronous schema', () => {
    const payload = Object.defineProperty({ n: 1 }, 'secret', { enumerable: true, get: () => { throw new Error('denied'); } });
    expect(() => start().send.sse({ channel: 'orders', payload: payload as never })).toThrow(/\$send\.sse: payload\.secret: reading this value threw: denied/);
  });

  test('a payload over the 4 MiB input limit is refused with its own message', () => {
    expect(() => start().send.sse({ channel: 'orders', payload: 'x'.repeat(5 * 1024 * 1024) })).toThrow(/larger than 4194304 bytes as JSON/);
  });
});
