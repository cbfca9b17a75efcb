import { join } from 'node:path';
import { expect, test } from 'vitest';
import { auditModule, eventually, exited, folderWith, spawnEgress } from './helpers.js';

const config = `store: { kind: memory }\ndestinations:\n  audit: { module: ${auditModule}, file: ./audit.jsonl }\n`;

test('egress worker --metrics serves /metrics, /healthz and /readyz while it runs', async () => {
  const folder = folderWith({ 'egress.config.yaml': config });
  const worker = spawnEgress(['worker', '-c', join(folder, 'egress.config.yaml'), '--metrics', '127.0.0.1:0']);
  try {
    await eventually(() => worker.output().stderr.includes('egress worker: delivering to audit'), 20_000, () => JSON.stringify(worker.output()));
    const base = /metrics at (http:\/\/\S+)\/metrics/.exec(worker.output().stderr)![1]!;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', store: { kind: 'memory', state: 'connected' }, destinations: { audit: { ok: true } } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('# TYPE egress_events_waiting gauge');
    expect(metrics).toMatch(/^egress_store_up\{egress_store_kind="memory"\} 1$/m);
    worker.kill('SIGTERM');
    expect(await exited(worker)).toBe(0);
    // Shut down with the worker.
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  } finally {
    worker.kill('SIGKILL');
  }
});

test('metrics.listen in the config serves the endpoints too, and --metrics with a bad address is refused with exit code 2', async () => {
  const folder = folderWith({ 'egress.config.yaml': `${config}metrics: { listen: '127.0.0.1:0', partitionLimit: 3 }\n` });
  const worker = spawnEgress(['worker', '-c', join(folder, 'egress.config.yaml')]);
  try {
    await eventually(() => /metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/.test(worker.output().stderr), 20_000, () => JSON.stringify(worker.output()));
    worker.kill('SIGTERM');
    expect(await exited(worker)).toBe(0);
  } finally {
    worker.kill('SIGKILL');
  }
  const refused = spawnEgress(['worker', '-c', join(folder, 'egress.config.yaml'), '--metrics', 'localhost']);
  expect(await exited(refused)).toBe(2);
  expect(refused.output().stderr).toContain('--metrics: [egress] [opentelemetry] listen address: expected host:port');
});

test('a config whose metrics.listen is not host:port is a configuration problem that says what was expected', async () => {
  const folder = folderWith({ 'egress.config.yaml': `${config}metrics: { listen: '9464' }\n` });
  const validate = spawnEgress(['validate', '-c', join(folder, 'egress.config.yaml')]);
  expect(await exited(validate)).toBe(2);
  expect(validate.output().stderr + validate.output().stdout).toContain('metrics.listen: expected host:port');
});
