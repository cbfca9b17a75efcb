export { checkConfig, defaultConfigFiles, findConfigFile, formatProblems, loadConfig, type ConfigCheck, type ConfigProblem, type EgressConfig } from './config-loader.js';
export { configJsonSchema, type EgressConfigFile } from './config-schema.js';
export { defineConfig } from './define-config.js';
