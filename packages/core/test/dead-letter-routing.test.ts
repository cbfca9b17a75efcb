import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { createEgress, defineDestination, EgressConfigurationError, silentLogger, type PolicyOptions } from '../src/index.js';
import { recordingDestination } from './helpers.js';

const source = recordingDestination({ name: 'orders' }).destination;
const ops = recordingDestination({ name: 'ops' }).destination;
const webhook = defineDestination({
  name: 'webhook',
  input: z.strictObject({ url: z.string(), data: z.unknown() }),
  async deliver() {},
});

function attempt(policies: Record<string, PolicyOptions>) {
  return () => createEgress({ destinations: [source, ops, webhook], logger: silentLogger, policies: policies as never });
}

describe('dead-letter routes are checked at createEgress', () => {
  test.each([
    ['a destination that does not exist', { orders: { deadLetters: { routeTo: 'nowhere' } } }, 'policies.orders.deadLetters.routeTo: no destination is named "nowhere" (registered: orders, ops, webhook)'],
    ['the destination itself', { orders: { deadLetters: { routeTo: 'orders' } } }, 'policies.orders.deadLetters.routeTo: "orders" cannot receive its own dead letters'],
    [
      'a destination that routes its own',
      { orders: { deadLetters: { routeTo: 'webhook', fields: { url: 'https://ops.example' }, recordField: 'data' } }, webhook: { deadLetters: { routeTo: 'orders' } } },
      'policies.orders.deadLetters.routeTo: "webhook" routes its own dead letters to "orders"; a routing target may not',
    ],
    ['no name', { orders: { deadLetters: { routeTo: '' } } }, 'policies.orders.deadLetters.routeTo: expected the name of a destination'],
    ['an unknown key', { orders: { deadLetters: { routeTo: 'ops', to: 'ops' } } }, 'policies.orders.deadLetters.to: unknown key "to"'],
    ['both input and fields', { orders: { deadLetters: { routeTo: 'webhook', input: (letter: unknown) => letter, fields: {} } } }, 'policies.orders.deadLetters.input: give either "input" or "fields"/"recordField", not both'],
    ['a shape the target refuses', { orders: { deadLetters: { routeTo: 'webhook' } } }, 'policies.orders.deadLetters: a dead letter does not fit the input of "webhook"'],
  ])('refuses a route to %s with a typed error naming it', (_case, policies, message) => {
    expect(attempt(policies as Record<string, PolicyOptions>)).toThrow(EgressConfigurationError);
    expect(attempt(policies as Record<string, PolicyOptions>)).toThrow(message);
  });

  test('refuses dead-letter routing in an adapter\'s defaults', () => {
    const adapter = defineDestination({ name: 'routing', input: z.unknown(), defaults: { deadLetters: { routeTo: 'ops' } }, async deliver() {} });
    expect(() => createEgress({ destinations: [adapter, ops], logger: silentLogger })).toThrow('[routing] defaults.deadLetters: an adapter cannot route dead letters');
  });

  test('accepts fields with the record under recordField, and a function', async () => {
    const withFields = attempt({ orders: { deadLetters: { routeTo: 'webhook', fields: { url: 'https://ops.example/hook' }, recordField: 'data' } } })();
    const withFunction = attempt({ orders: { deadLetters: { routeTo: 'webhook', input: (letter) => ({ url: 'https://ops.example/hook', data: letter }) } } })();
    await Promise.all([withFields.close(), withFunction.close()]);
  });
});
