import { randomBytes } from 'node:crypto';
import { EgressConfigurationError } from '@egress/core';
import { Webhook } from 'standardwebhooks';
import { describe, expect, test } from 'vitest';
import { http } from '../src/index.js';
import { batchOf, deliveryContext, rejection, useReceiver, type ReceivedRequest } from './receiver.js';

const receiver = useReceiver({ keepAnswer: true });
const oldSecret = `whsec_${randomBytes(24).toString('base64')}`;
const newSecret = `whsec_${randomBytes(32).toString('base64')}`;

function signatureHeaders(request: ReceivedRequest): Record<string, string> {
  return {
    'webhook-id': String(request.headers['webhook-id']),
    'webhook-timestamp': String(request.headers['webhook-timestamp']),
    'webhook-signature': String(request.headers['webhook-signature']),
  };
}

describe('http: Standard Webhooks signing, checked with the standardwebhooks package', () => {
  test('signs a JSON body so that a receiver holding the secret verifies it', async () => {
    const destination = http({ signing: { secrets: newSecret } });
    const batch = batchOf([{ url: receiver.origin, data: { type: 'user.created', id: 7 } }]);
    await destination.deliver(batch, deliveryContext());
    await destination.stop?.();
    const request = receiver.requests[0]!;
    expect(request.headers['webhook-id']).toBe(batch.events[0]!.id);
    expect(Number(request.headers['webhook-timestamp'])).toBeCloseTo(Date.now() / 1000, -2);
    expect(new Webhook(newSecret).verify(request.body.toString(), signatureHeaders(request))).toEqual({ type: 'user.created', id: 7 });
  });

  test('signs with every secret while they rotate, so either one verifies', async () => {
    const destination = http({ signing: { secrets: [oldSecret, newSecret] } });
    await destination.deliver(batchOf([{ url: receiver.origin, data: 'plain text body', method: 'PUT' }]), deliveryContext());
    await destination.stop?.();
    const request = receiver.requests[0]!;
    expect(String(request.headers['webhook-signature']).split(' ')).toHaveLength(2);
    for (const secret of [oldSecret, newSecret]) {
      expect(() => new Webhook(secret).verify(request.body.toString(), signatureHeaders(request), { jsonParse: false })).not.toThrow();
    }
    const stranger = `whsec_${randomBytes(24).toString('base64')}`;
    expect(() => new Webhook(stranger).verify(request.body.toString(), signatureHeaders(request), { jsonParse: false })).toThrow();
  });

  test('signs a bodiless request over the empty body', async () => {
    const destination = http({ signing: { secrets: newSecret } });
    await destination.deliver(batchOf([{ method: 'GET', url: `${receiver.origin}/ping` }]), deliveryContext());
    await destination.stop?.();
    const request = receiver.requests[0]!;
    expect(() => new Webhook(newSecret).verify('', signatureHeaders(request), { jsonParse: false })).not.toThrow();
  });

  test('signs a batched body under the batch id', async () => {
    const destination = http({ signing: { secrets: newSecret }, batch: { format: 'ndjson' } });
    const batch = batchOf([{ url: receiver.origin, data: { n: 1 } }, { url: receiver.origin, data: { n: 2 } }]);
    await destination.deliver(batch, deliveryContext());
    await destination.stop?.();
    const request = receiver.requests[0]!;
    expect(request.headers['webhook-id']).toBe(batch.id);
    expect(() => new Webhook(newSecret).verify(request.body.toString(), signatureHeaders(request), { jsonParse: false })).not.toThrow();
  });

  test('signs each retry afresh with the same webhook-id', async () => {
    const destination = http({ signing: { secrets: newSecret } });
    receiver.answer((_request, response) => {
      response.statusCode = receiver.requests.length === 1 ? 500 : 200;
      response.end();
    });
    const batch = batchOf([{ url: receiver.origin, data: { n: 1 } }]);
    await rejection(destination.deliver(batch, deliveryContext()));
    await destination.deliver(batch, deliveryContext());
    await destination.stop?.();
    receiver.answer((_request, response) => response.end());
    expect(receiver.requests.map((request) => request.headers['webhook-id'])).toEqual([batch.events[0]!.id, batch.events[0]!.id]);
    for (const request of receiver.requests) {
      expect(() => new Webhook(newSecret).verify(request.body.toString(), signatureHeaders(request), { jsonParse: false })).not.toThrow();
    }
  });

  test('refuses a secret that is not whsec_ base64, without printing it', () => {
    const error = (() => {
      try {
        http({ signing: { secrets: [newSecret, 'whsec_not base64!!'] } });
      } catch (caught) {
        return caught as Error;
      }
      throw new Error('expected the option to be refused');
    })();
    expect(EgressConfigurationError.isInstance(error)).toBe(true);
    expect(error.message).toContain('[http] option "signing"');
    expect(error.message).toContain('secret #2');
    expect(error.message).not.toContain('not base64');
    expect(error.message).not.toContain(newSecret);
  });
});
