#!/usr/bin/env node
import { demoUsage, parseDemoArguments } from './demo-arguments.js';
import { quietAwsNodeVersionWarning } from './quiet-warnings.js';
import { runDemo } from './run-demo.js';

quietAwsNodeVersionWarning();
const argv = process.argv.slice(2);

async function main(): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`Usage: egress-demo ${demoUsage}\n\nRuns a small shop through every destination against local stand-ins and prints what arrived where.\n`);
    return 0;
  }
  let options;
  try {
    options = parseDemoArguments(argv);
  } catch (error) {
    process.stderr.write(`egress-demo: ${(error as Error).message}\nUsage: egress-demo ${demoUsage}\n`);
    return 2;
  }
  try {
    const summary = await runDemo(options, { stdout: process.stdout, stderr: process.stderr });
    return Object.values(summary.destinations).some((entry) => entry.delivered > 0) ? 0 : 1;
  } catch (error) {
    process.stderr.write(`egress-demo: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

main().then((code) => {
  process.exitCode = code;
  // Stand-in servers and client pools must not keep a finished demo alive.
  setTimeout(() => process.exit(code), 1000).unref();
});
