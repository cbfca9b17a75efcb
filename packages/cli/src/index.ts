export {
  checkConfig,
  defaultConfigFiles,
  findConfigFile,
  formatProblems,
  loadConfig,
  type ConfigCheck,
  type ConfigProblem,
  type ConfigScope,
  type DestinationFactory,
  type DestinationsOf,
  type EgressConfig,
  type LoadConfigOptions,
} from './config-loader.js';
export { configJsonSchema, type EgressConfigFile } from './config-schema.js';
export { defineConfig } from './define-config.js';
