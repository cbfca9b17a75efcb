import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { configJsonSchema } from '../src/index.js';

test('the published schema.json is generated from the current config definition', () => {
  const published = JSON.parse(readFileSync(new URL('../schema.json', import.meta.url), 'utf8')) as unknown;
  // When this fails, run `pnpm --filter @egress/cli build`, which regenerates schema.json.
  expect(published).toEqual(configJsonSchema());
});

test('the schema is published with the package and closes the top level to unknown keys', () => {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { files: string[]; exports: Record<string, unknown> };
  expect(manifest.files).toContain('schema.json');
  expect(manifest.exports['./schema.json']).toBe('./schema.json');
  const schema = configJsonSchema() as { additionalProperties: unknown; required: string[]; properties: Record<string, unknown> };
  expect(schema.additionalProperties).toBe(false);
  expect(schema.required).toEqual(['destinations']);
  expect(Object.keys(schema.properties)).toEqual(['$schema', 'store', 'commitBuffer', 'startup', 'metrics', 'tracing', 'destinations', 'policies', 'alerts']);
});
