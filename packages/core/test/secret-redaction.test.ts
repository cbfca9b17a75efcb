import { afterEach, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { createEgress, createEventId, defineDestination, encodePayload, memoryStore, PermanentError, redactSecrets, SecretRedactor, silentLogger, type Logger } from '../src/index.js';
import { EventHub } from '../src/egress-events.js';
import { trackEngines } from './helpers.js';

const track = trackEngines(afterEach);
const secret = 'tok_9f8e7d6c5b4a s3cr=t';

describe('the redaction step', () => {
  test('masks a known secret plain, URL-encoded, form-encoded, base64, base64url and JSON-escaped', () => {
    const redactor = new SecretRedactor([secret]);
    const spellings = [
      secret,
      encodeURIComponent(secret),
      new URLSearchParams({ s: secret }).toString().slice(2),
      Buffer.from(secret).toString('base64'),
      Buffer.from(secret).toString('base64url'),
    ];
    for (const spelling of spellings) expect(redactor.redact(`before ${spelling} after`)).toBe('before [redacted] after');
  });

  test('masks credential-like query parameters, JSON fields, scheme credentials and URL passwords it was not told about', () => {
    const text = [
      'GET https://api.example/hook?access_token=abc123&page=2&sig=zz&X-Amz-Signature=ffff',
      '{"x-api-key":"k-1","name":"Luke","password":"hunter2"}',
      'authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x',
      'postgres://app:pa55word@db:5432/app',
    ].join('\n');
    const redacted = redactSecrets(text);
    for (const leaked of ['abc123', 'zz&', 'ffff', 'k-1', 'hunter2', 'eyJhbGciOiJIUzI1NiJ9', 'pa55word']) expect(redacted).not.toContain(leaked);
    for (const kept of ['page=2', '"name":"Luke"', 'https://api.example/hook', 'app:[redacted]@db']) expect(redacted).toContain(kept);
  });

  test('errors, dead letters, events, settled() and logs hold no secret of the adapter or the call', async () => {
    const lines: string[] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn(fields, message) {
        lines.push(JSON.stringify({ fields, message }, (_key, value: unknown) => (value instanceof Error ? { message: value.message, stack: value.stack } : value)));
      },
      error(fields, message) {
        this.warn(fields, message);
      },
    };
    const destination = defineDestination({
      name: 'leaky',
      input: z.strictObject({ token: z.string() }),
      secrets: () => ['adapter-password-1'],
      payloadSecrets: (payload) => [payload.token],
      async deliver(batch, context) {
        const token = batch.events[0]!.payload.token;
        context.logger.warn({ error: new Error('echo adapter-password-1') }, 'receiver said adapter-password-1');
        throw new PermanentError(`401: ${token} and ${Buffer.from('adapter-password-1').toString('base64')}`);
      },
      async health() {
        return { ok: false, message: 'login failed for adapter-password-1' };
      },
    });
    const egress = track(createEgress({ destinations: [destination], store: memoryStore(), logger }));
    const texts: string[] = [];
    egress.on('dead', (event) => texts.push(JSON.stringify(event)));
    const receipt = egress.send.leaky({ token: 'call-token-42' });
    texts.push(JSON.stringify(await receipt.settled()));
    texts.push(JSON.stringify(await egress.deadLetters.list()));
    texts.push(JSON.stringify(await egress.health()));
    texts.push(...lines);
    const all = texts.join('\n');
    expect(all).toContain('[redacted]');
    expect(all).not.toContain('call-token-42');
    expect(all).not.toContain('adapter-password-1');
    expect(all).not.toContain(Buffer.from('adapter-password-1').toString('base64'));
  });

  test('a dead letter an older version stored unredacted is redacted when listed', async () => {
    const store = memoryStore();
    await store.open({ logger: silentLogger });
    const id = createEventId();
    const payload = encodePayload({ token: 'old-token-123456' });
    await store.enqueue([{ id, destination: 'leaky', partition: '', payload, size: payload.length, sentAt: 1, attempts: 0 }]);
    const claimed = await store.claim({ destination: 'leaky', now: Date.now(), owner: 'old', maxBatches: 1, maxEvents: 1, maxBytes: 1_000_000, maxDelay: 0, force: true, fifo: false, leaseMs: 30_000 });
    await store.settle(claimed.batches[0]!, { delivered: [], dead: [{ eventId: id, error: { name: 'PermanentError', message: '401 for old-token-123456 ?access_token=zzzz', at: 1 } }] });
    const destination = defineDestination({
      name: 'leaky',
      input: z.strictObject({ token: z.string() }),
      payloadSecrets: (queued) => [queued.token],
      async deliver() {},
    });
    const egress = track(createEgress({ destinations: [destination], store, logger: silentLogger }));
    const listed = JSON.stringify(await egress.deadLetters.list());
    expect(listed).not.toContain('old-token-123456');
    expect(listed).not.toContain('zzzz');
    expect(listed).toContain('401 for [redacted]');
  });

  test('lost events and the store\'s status carry the store\'s error through the redaction step', () => {
    const hub = new EventHub(silentLogger, (text) => redactSecrets(text));
    const seen: string[] = [];
    hub.on('lost', (event) => seen.push(event.message));
    hub.on('store', (event) => seen.push(event.error ?? ''));
    hub.emit('lost', { destination: 'x', count: 1, reason: 'store-failed', message: 'connect postgres://app:pa55word@db/app failed' });
    hub.emit('store', { kind: 'postgres', state: 'unreachable', since: 0, buffered: 1, error: 'connect postgres://app:pa55word@db/app failed' });
    expect(seen).toEqual(['connect postgres://app:[redacted]@db/app failed', 'connect postgres://app:[redacted]@db/app failed']);
  });
});
