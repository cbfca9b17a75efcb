export * from './metrics/index.js';
export * from './tracing/index.js';
