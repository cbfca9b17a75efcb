// Writes schema.json from the built package, so the published JSON Schema is the loader's own definition.
import { writeFileSync } from 'node:fs';
import { configJsonSchema } from '../dist/index.js';

writeFileSync(new URL('../schema.json', import.meta.url), `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
