import { parseArgs } from 'node:util';
import type { DemoOptions } from './run-demo.js';

/** The demo's options, as `egress demo` and `egress-demo` both take them. */
export const demoUsage = '[--orders 40] [--keep] [--json]';

/** Reads `--orders`, `--keep` and `--json`; throws a `TypeError` that names the bad argument. */
export function parseDemoArguments(argv: readonly string[]): DemoOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: { orders: { type: 'string' }, keep: { type: 'boolean' }, json: { type: 'boolean' } },
    strict: true,
    allowPositionals: false,
  });
  return demoOptions(values);
}

/** Checks already-parsed values: `orders` an integer from 1 to 10000 (40 when absent). */
export function demoOptions(values: { orders?: string | undefined; keep?: boolean | undefined; json?: boolean | undefined }): DemoOptions {
  const orders = Number(values.orders ?? 40);
  if (!Number.isInteger(orders) || orders < 1 || orders > 10_000) throw new TypeError(`--orders: expected an integer from 1 to 10000, got "${String(values.orders)}"`);
  return { orders, keep: values.keep === true, json: values.json === true };
}
