import { join } from 'node:path';
import { expect, test } from 'vitest';
import { auditModule, eventually, exited, folderWith, spawnEgress } from './helpers.js';

test('egress worker runs until SIGTERM, then closes gracefully and exits 0', async () => {
  const folder = folderWith({ 'egress.config.yaml': `store: { kind: memory }\ndestinations:\n  audit: { module: ${auditModule}, file: ./audit.jsonl }\n` });
  const worker = spawnEgress(['worker', '-c', join(folder, 'egress.config.yaml')]);
  try {
    await eventually(() => worker.output().stderr.includes('egress worker: delivering to audit from the memory store'), 20_000, () => `the worker to start: ${JSON.stringify(worker.output())}`);
    expect(worker.output().stderr).toContain('warning: the memory store is not durable');
    worker.kill('SIGTERM');
    expect(await exited(worker)).toBe(0);
    expect(worker.output().stderr).toContain('egress worker: SIGTERM: finishing in-flight deliveries');
    expect(worker.output().stderr).toContain('egress worker: stopped (delivered 0, retried 0, dead 0)');
  } finally {
    worker.kill('SIGKILL');
  }
});

test('egress worker refuses an invalid config with exit code 2 and every problem', async () => {
  const folder = folderWith({ 'egress.config.yaml': 'destinations:\n  mail: { type: nosuchadapter }\nstore: { kind: memory, size: 3 }\n' });
  const worker = spawnEgress(['worker', '-c', join(folder, 'egress.config.yaml')]);
  expect(await exited(worker)).toBe(2);
  expect(worker.output().stderr).toContain('2 problems in the configuration');
  expect(worker.output().stderr).toContain('destinations.mail.type: package @egress/nosuchadapter is not installed');
  expect(worker.output().stderr).toContain('store.size: unknown key (expected one of kind, maxEvents, maxBytes)');
});

test('egress status --watch refreshes until interrupted, then exits 0', async () => {
  const folder = folderWith({ 'egress.config.yaml': `store: { kind: memory }\ndestinations:\n  audit: { module: ${auditModule}, file: ./audit.jsonl }\n` });
  const status = spawnEgress(['status', '--watch', '--interval', '0.2', '--json', '-c', join(folder, 'egress.config.yaml')]);
  try {
    await eventually(() => status.output().stdout.trim().split('\n').length >= 3, 20_000, () => `three refreshes: ${JSON.stringify(status.output())}`);
    status.kill('SIGINT');
    expect(await exited(status)).toBe(0);
  } finally {
    status.kill('SIGKILL');
  }
  for (const line of status.output().stdout.trim().split('\n')) expect(JSON.parse(line)).toEqual([expect.objectContaining({ destination: 'audit', waiting: 0 })]);
});

test('egress worker serves a destination that has "listen" (SSE) until it stops', async () => {
  const folder = folderWith({ 'egress.config.yaml': 'store: { kind: memory }\ndestinations:\n  updates:\n    type: sse\n    listen: { port: 0 }\n' });
  const worker = spawnEgress(['worker', '-c', join(folder, 'egress.config.yaml')]);
  try {
    await eventually(() => /updates serves subscribers at http:\/\/127\.0\.0\.1:\d+\//.test(worker.output().stderr), 20_000, () => worker.output().stderr);
    const url = /serves subscribers at (\S+)/.exec(worker.output().stderr)![1]!;
    const controller = new AbortController();
    const response = await fetch(url, { signal: controller.signal });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    controller.abort();
    worker.kill('SIGTERM');
    expect(await exited(worker)).toBe(0);
  } finally {
    worker.kill('SIGKILL');
  }
});
