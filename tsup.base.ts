import { defineConfig, type Options } from 'tsup';

/** The one build shape every package shares: ESM and CJS with declarations, dependencies external. */
export function packageBuild(overrides: Options = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    splitting: false,
    ...overrides,
  });
}
