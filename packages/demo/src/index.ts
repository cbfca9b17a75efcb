export { demoOptions, demoUsage, parseDemoArguments } from './demo-arguments.js';
export type { DemoIo } from './demo-output.js';
export { quietAwsNodeVersionWarning } from './quiet-warnings.js';
export { runDemo, type DemoOptions, type DemoSummary } from './run-demo.js';
