import { createEgress, silentLogger } from '@egress/core';
import { sse } from '@egress/sse';
import { expect, test } from 'vitest';
import { eventually, exited, spawnEgress } from './helpers.js';

test('egress tail prints the events of an SSE stream, replayed then live, and stops on SIGINT', async () => {
  const stream = sse({ auth: { tokens: ['tail-test-token-0123456789'] } });
  const egress = createEgress({ destinations: [stream], logger: silentLogger });
  await egress.ready();
  const { url } = await stream.listen(0, '127.0.0.1');
  try {
    await egress.send.sse({ channel: 'orders', payload: { order: 1 } }).settled();
    await egress.send.sse({ channel: 'audit', payload: { ignored: true } }).settled();
    const tail = spawnEgress(['tail', url, '--channel', 'orders', '--json'], { environment: { EGRESS_SSE_TOKEN: 'tail-test-token-0123456789' } });
    try {
      await eventually(() => tail.output().stdout.includes('"order":1'), 20_000, () => `the replayed event: ${JSON.stringify(tail.output())}`);
      await egress.send.sse({ channel: 'orders', payload: { order: 2 } }).settled();
      await eventually(() => tail.output().stdout.includes('"order":2'), 20_000, () => `the live event: ${JSON.stringify(tail.output())}`);
      tail.kill('SIGINT');
      expect(await exited(tail)).toBe(0);
    } finally {
      tail.kill('SIGKILL');
    }
    const lines = tail.output().stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: string; channel: string; data: unknown });
    expect(lines.map(({ channel, data }) => ({ channel, data }))).toEqual([
      { channel: 'orders', data: { order: 1 } },
      { channel: 'orders', data: { order: 2 } },
    ]);
    expect(lines.every((line) => typeof line.id === 'string' && line.id.length > 0)).toBe(true);
  } finally {
    await egress.close();
  }
});

test('egress tail says when the stream refuses the token (exit 1)', async () => {
  const stream = sse({ auth: { tokens: ['the-right-token-0123456789'] } });
  const egress = createEgress({ destinations: [stream], logger: silentLogger });
  await egress.ready();
  const { url } = await stream.listen(0, '127.0.0.1');
  try {
    const tail = spawnEgress(['tail', url, '--token', 'a-wrong-token-0123456789']);
    expect(await exited(tail)).toBe(1);
    expect(tail.output().stderr).toMatch(/^egress tail: .*401/m);
    expect(tail.output().stderr).not.toContain('a-wrong-token-0123456789');
  } finally {
    await egress.close();
  }
});
