import { EgressConfigurationError, PermanentError } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { AddressRefusedError, checkAddress, isRefusedAddress, parseAllowList } from '../src/address-guard.js';
import { http } from '../src/index.js';
import { batchOf, deliveryContext, rejection, useReceiver } from './receiver.js';

const receiver = useReceiver();

async function deliverWith(options: Parameters<typeof http>[0], url: string) {
  const destination = http(options);
  try {
    return await destination.deliver(batchOf([{ url, data: { n: 1 } }]), deliveryContext());
  } finally {
    await destination.stop?.();
  }
}

describe('http: guard against requests to internal addresses', () => {
  test('refuses a host name that resolves to loopback, permanently, before any byte is sent', async () => {
    const error = await rejection(deliverWith({ guard: true }, `http://localhost:${receiver.port}/hook`));
    expect(PermanentError.isInstance(error)).toBe(true);
    expect(error.message).toMatch(/host localhost resolves to (127\.0\.0\.1|::1)/);
    expect(receiver.requests).toHaveLength(0);
  });

  test('refuses loopback written as an IPv4 or IPv6 literal', async () => {
    for (const url of [`${receiver.origin}/hook`, `http://[::1]:${receiver.port}/hook`, `http://[::ffff:127.0.0.1]:${receiver.port}/hook`]) {
      const error = await rejection(deliverWith({ guard: true }, url));
      expect(PermanentError.isInstance(error)).toBe(true);
      expect(error.message).toContain('the guard refuses it');
    }
    expect(receiver.requests).toHaveLength(0);
  });

  test('lets the receiver through when its range is on the allow-list', async () => {
    await deliverWith({ guard: { allow: ['127.0.0.0/8', '::1/128'] } }, `http://localhost:${receiver.port}/hook`);
    await deliverWith({ guard: { allow: ['127.0.0.1'] } }, `${receiver.origin}/hook`);
    expect(receiver.requests).toHaveLength(2);
  });

  test('lets a host name on the allow-list through, whatever it resolves to', async () => {
    await deliverWith({ guard: { allow: ['LocalHost'] } }, `http://localhost:${receiver.port}/hook`);
    expect(receiver.requests).toHaveLength(1);
  });

  test('matches wildcard host entries on a dot boundary', () => {
    const allow = parseAllowList(['*.internal.example', '10.0.0.0/8']);
    if ('invalid' in allow) throw new Error('allow-list refused');
    expect(checkAddress('hooks.internal.example', '192.168.0.5', allow)).toBeUndefined();
    expect(checkAddress('evilinternal.example', '192.168.0.5', allow)).toBeInstanceOf(AddressRefusedError);
    expect(checkAddress('anything.test', '10.9.8.7', allow)).toBeUndefined();
    expect(checkAddress('anything.test', '::ffff:10.9.8.7', allow)).toBeUndefined();
    expect(checkAddress('anything.test', '8.8.8.8', allow)).toBeUndefined();
  });

  test('checks a redirect target too', async () => {
    receiver.answer((request, response) => {
      if (request.url === '/start') response.writeHead(302, { location: `http://127.0.0.1:${receiver.port}/internal` });
      response.end();
    });
    const error = await rejection(deliverWith({ guard: { allow: ['localhost'] }, followRedirects: true }, `http://localhost:${receiver.port}/start`));
    expect(PermanentError.isInstance(error)).toBe(true);
    expect(receiver.requests.map((request) => request.url)).toEqual(['/start']);
  });

  test.each([
    ['127.0.0.1', true],
    ['127.255.0.9', true],
    ['10.1.2.3', true],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['192.168.1.1', true],
    ['169.254.169.254', true],
    ['100.64.0.1', true],
    ['100.127.255.254', true],
    ['0.0.0.0', true],
    ['224.0.0.1', true],
    ['255.255.255.255', true],
    ['::1', true],
    ['::', true],
    ['fd00:ec2::254', true],
    ['fc00::1', true],
    ['fe80::1', true],
    ['::ffff:10.0.0.1', true],
    ['::ffff:a00:1', true],
    ['64:ff9b::a9fe:a9fe', true],
    ['2002:7f00:1::', true],
    ['8.8.8.8', false],
    ['93.184.216.34', false],
    ['172.32.0.1', false],
    ['100.128.0.1', false],
    ['2606:4700::1111', false],
    ['::ffff:8.8.8.8', false],
  ])('classifies %s as refused: %s', (address, refused) => {
    expect(isRefusedAddress(address)).toBe(refused);
  });

  test('refuses an allow-list entry that is neither host, address nor CIDR', () => {
    expect(() => http({ guard: { allow: ['10.0.0.0/33'] } })).toThrow(EgressConfigurationError);
    expect(() => http({ guard: { allow: ['http://example.com'] } })).toThrow(/option "guard"/);
  });
});
