import { expect, test } from 'vitest';
import { parseDemoArguments, quietAwsNodeVersionWarning } from '@egress/demo';

test('egress-demo reads --orders, --keep and --json, 40 orders by default', () => {
  expect(parseDemoArguments([])).toEqual({ orders: 40, keep: false, json: false });
  expect(parseDemoArguments(['--orders', '12', '--keep', '--json'])).toEqual({ orders: 12, keep: true, json: true });
});

test('egress-demo refuses an order count that is not an integer from 1 to 10000, and unknown options', () => {
  expect(() => parseDemoArguments(['--orders', '0'])).toThrow('--orders: expected an integer from 1 to 10000, got "0"');
  expect(() => parseDemoArguments(['--orders', 'many'])).toThrow('--orders: expected an integer from 1 to 10000, got "many"');
  expect(() => parseDemoArguments(['--colour'])).toThrow(/--colour/);
});

test('the AWS SDK\'s Node version warning stays quiet unless warnings are asked for', () => {
  const quiet: NodeJS.ProcessEnv = {};
  quietAwsNodeVersionWarning(quiet, []);
  expect(quiet.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe('true');
  const traced: NodeJS.ProcessEnv = { NODE_OPTIONS: '--trace-warnings' };
  quietAwsNodeVersionWarning(traced, []);
  expect(traced.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBeUndefined();
  const flagged: NodeJS.ProcessEnv = {};
  quietAwsNodeVersionWarning(flagged, ['--trace-warnings']);
  expect(flagged.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBeUndefined();
  const chosen: NodeJS.ProcessEnv = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'false' };
  quietAwsNodeVersionWarning(chosen, []);
  expect(chosen.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe('false');
});
