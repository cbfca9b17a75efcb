import { join } from 'node:path';
import { createEgress, EgressConfigurationError, silentLogger } from '@egress/core';
import { http } from '@egress/http';
import { expect, expectTypeOf, test } from 'vitest';
import { loadConfig } from '../src/index.js';
import { folderWith } from './helpers.js';

const file = () => join(folderWith({ 'egress.config.yaml': 'store: { kind: memory }\ndestinations:\n  http: {}\n  hooks: { type: http }\n' }), 'egress.config.yaml');

test('loadConfig given the factories by name types send: known names, checked fields', async () => {
  const egress = createEgress({ ...(await loadConfig(file(), { destinations: { http, hooks: http } })), logger: silentLogger, role: 'producer' });
  try {
    expectTypeOf(egress.send).toHaveProperty('http');
    expectTypeOf(egress.send).toHaveProperty('hooks');
    expectTypeOf(egress.send.hooks).parameter(0).toHaveProperty('url');
    // @ts-expect-error a name the file does not define is a compile error
    expect(() => egress.send.s3).toThrow(/no destination is registered under this name/);
    // @ts-expect-error `body` is not a field of $send.http; the request body goes in `data`
    expect(() => egress.send.hooks({ url: 'http://127.0.0.1:9/', body: 'lost' })).toThrow(/unknown field "body"/);
    expect(egress.send.http({ method: 'POST', url: 'http://127.0.0.1:9/', data: { name: 'Luke Skywalker' } }).id).toMatch(/^[0-9a-f-]{36}$/);
  } finally {
    await egress.close({ timeout: 1000 });
  }
});

test('loadConfig refuses a file whose destinations are not the ones it was told to expect', async () => {
  const loading = loadConfig(file(), { destinations: { http, webhooks: http } });
  await expect(loading).rejects.toSatisfy((error) => EgressConfigurationError.isInstance(error));
  await expect(loadConfig(file(), { destinations: { http } })).rejects.toThrow('the file defines the destinations hooks, http, but loadConfig was told to expect http');
});

test('loadConfig without factories keeps its untyped result', async () => {
  const config = await loadConfig(file());
  expect(config.destinations.map((destination) => destination.name).sort()).toEqual(['hooks', 'http']);
  await config.store.close();
});
