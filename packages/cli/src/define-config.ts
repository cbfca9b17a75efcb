import type { EgressConfigFile } from './config-schema.js';

/** Types a config written as `egress.config.mjs` (`export default defineConfig({...})`); returns it unchanged. */
export function defineConfig(config: EgressConfigFile): EgressConfigFile {
  return config;
}
