import { afterAll, expect, test } from 'vitest';
import { createEgress } from '@egress/core';
import { sse } from '@egress/sse';

const egress = createEgress({ destinations: [sse()] });
afterAll(() => egress.close());

function refusal(input: unknown): string {
  try {
    (egress.send.sse as (input: unknown) => unknown)(input);
  } catch (error) {
    return (error as Error).message;
  }
  return 'accepted';
}

test('data instead of payload names both fields in plain words, each under its own name', () => {
  expect(refusal({ channel: 'orders', data: { id: 1 } })).toBe(
    `$send.sse: payload: required: any JSON value (subscribers receive it as the event's "data"); unknown field "data": the event goes in "payload" (subscribers receive it as "data") (known: channel, payload)`,
  );
});

test('a payload that is not JSON and a channel that is not a string say what they got', () => {
  expect(refusal({ channel: 'orders', payload: () => 1 })).toBe('$send.sse: payload: a function cannot be carried as JSON');
  expect(refusal({ channel: 'orders', payload: { big: 1n } })).toBe('$send.sse: payload.big: a bigint cannot be carried as JSON: convert it to a string or a number');
  expect(refusal({ channel: 7, payload: {} })).toBe('$send.sse: channel: expected a string, got 7');
  expect(refusal({ payload: {} })).toBe('$send.sse: channel: required: the channel name, a string');
  expect(refusal({ channel: 'orders', payload: { id: 1 } })).toBe('accepted');
});
