#!/usr/bin/env node
import { main } from './cli.js';
import { quietAwsNodeVersionWarning } from './quiet-warnings.js';

quietAwsNodeVersionWarning();
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // A client library that keeps a socket open must not keep a finished command alive; output
  // already written has a second to drain before the process ends.
  setTimeout(() => process.exit(code), 1000).unref();
});
