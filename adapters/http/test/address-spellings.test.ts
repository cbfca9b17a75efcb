import { PermanentError } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { isRefusedAddress, normaliseAddress } from '../src/address-guard.js';
import { http } from '../src/index.js';
import { batchOf, deliveryContext, rejection, useReceiver } from './receiver.js';

const receiver = useReceiver();

describe('http guard: every IPv6 spelling of an internal address is judged as that address', () => {
  test.each([
    ['::127.0.0.1', '127.0.0.1'],
    ['::7f00:1', '127.0.0.1'],
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::ffff:7f00:1', '127.0.0.1'],
    ['::ffff:0:7f00:1', '127.0.0.1'],
    ['::ffff:0:127.0.0.1', '127.0.0.1'],
    ['0:0:0:0:0:ffff:a9fe:a9fe', '169.254.169.254'],
    ['64:ff9b::10.0.0.1', '10.0.0.1'],
    ['64:ff9b::a00:1', '10.0.0.1'],
    ['2002:c0a8:101::1', '192.168.1.1'],
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', '127.0.0.1'],
    ['[::ffff:10.1.2.3]', '10.1.2.3'],
  ])('%s is read as %s and refused', (spelling, ipv4) => {
    expect(normaliseAddress(spelling)).toEqual({ family: 4, address: ipv4 });
    expect(isRefusedAddress(spelling)).toBe(true);
  });

  test.each(['::1', '::', 'fe80::1%eth0', 'fd00:ec2::254', '64:ff9b:1::8.8.8.8', '0:0:0:0:0:0:0:1'])('%s is refused', (address) => {
    expect(isRefusedAddress(address)).toBe(true);
  });

  test.each(['8.8.8.8', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1', '2606:4700:4700::1111'])('%s, public, passes', (address) => {
    expect(isRefusedAddress(address)).toBe(false);
  });

  test('refuses loopback in IPv4-compatible and IPv4-translated spellings before any byte is sent', async () => {
    const destination = http({ guard: true });
    try {
      for (const host of ['[::127.0.0.1]', '[::ffff:0:7f00:1]', '[64:ff9b::7f00:1]', '[2002:7f00:1::]']) {
        const error = await rejection(destination.deliver(batchOf([{ url: `http://${host}:${receiver.port}/hook`, data: { n: 1 } }]), deliveryContext()));
        expect(PermanentError.isInstance(error)).toBe(true);
        expect(error.message).toContain('the guard refuses it');
      }
    } finally {
      await destination.stop?.();
    }
    expect(receiver.requests).toHaveLength(0);
  });
});
