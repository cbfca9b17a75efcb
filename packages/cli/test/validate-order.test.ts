import { expect, test } from 'vitest';
import { folderWith, runEgress } from './helpers.js';

const config = `store:
  kind: sqlite
  path: ./queue.db
  synchronous: off
destinations:
  http:
    timeout: fast
  hooks:
    type: http
    bogus: 1
policies:
  http:
    batch:
      maxEvents: -3
    retry:
      maxAttempts: 1.5
    ordering: random
    concurrency: "4"
  nothere:
    concurrency: 2
`;

test('egress validate lists every problem in the order of the lines of the file', async () => {
  const directory = folderWith({ 'egress.config.yaml': config });
  const { code, stdout } = await runEgress(['validate', '-c', `${directory}/egress.config.yaml`, '--json']);
  expect(code).toBe(2);
  const { problems } = JSON.parse(stdout) as { problems: { path: string; line: number; message: string }[] };
  expect(problems.map((problem) => problem.path)).toEqual([
    'store.synchronous',
    'destinations.http.timeout',
    'destinations.hooks.bogus',
    'policies.http.batch.maxEvents',
    'policies.http.retry.maxAttempts',
    'policies.http.ordering',
    'policies.http.concurrency',
    'policies.nothere',
  ]);
  const lines = problems.map((problem) => problem.line);
  expect(lines).toEqual([...lines].sort((first, second) => first - second));
});

test('egress validate says what was expected and what it found, in its own words rather than the schema library\'s', async () => {
  const directory = folderWith({ 'egress.config.yaml': config });
  const { stdout } = await runEgress(['validate', '-c', `${directory}/egress.config.yaml`, '--json']);
  const messages = Object.fromEntries((JSON.parse(stdout) as { problems: { path: string; message: string }[] }).problems.map((problem) => [problem.path, problem.message]));
  expect(messages['store.synchronous']).toBe('expected one of normal, full, got the string "off"');
  expect(messages['policies.http.batch.maxEvents']).toBe('expected a number greater than 0, got -3');
  expect(messages['policies.http.retry.maxAttempts']).toBe('expected a whole number, got 1.5');
  expect(messages['policies.http.ordering']).toBe('expected one of fifo, none, got the string "random"');
  expect(messages['policies.http.concurrency']).toBe('expected a whole number of at least 1, adaptive or { adaptive: { initial, max, decrease, rttSmoothing, rttDeviationScale } }, got the string "4"');
  for (const message of Object.values(messages)) expect(message).not.toMatch(/Invalid (input|option)|Too (small|big)|received/);
});
