import type { ClaimedBatch } from '@egress/core';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { Removed, SettlementRequest } from '../src/batch-settlement.js';
import { SettlementGroup } from '../src/settlement-group.js';

function request(id: string): SettlementRequest {
  const claimed: ClaimedBatch = { id, destination: 'd', partition: '', events: [{ id: `e-${id}`, destination: 'd', partition: '', payload: '{}', size: 2, sentAt: 0, attempts: 1 }] };
  return { claimed, token: 't', settlement: { delivered: [`e-${id}`], dead: [] } };
}

describe('settlements written together', () => {
  let writes: string[][];
  let group: SettlementGroup;
  const write = async (requests: readonly SettlementRequest[]): Promise<Removed[]> => {
    writes.push(requests.map((each) => each.claimed.id));
    return requests.map(() => ({ events: 1, bytes: 2 }));
  };
  beforeEach(() => {
    vi.useFakeTimers();
    writes = [];
  });
  afterEach(() => vi.useRealTimers());

  test('without a hold, a settlement goes out at once and those arriving meanwhile share the next write', async () => {
    group = new SettlementGroup(write, 1);
    const settled = [group.submit(request('a')), group.submit(request('b')), group.submit(request('c'))];
    await Promise.all(settled);
    expect(writes).toEqual([['a'], ['b', 'c']]);
  });

  test('settlements that may wait are held for the hold time and then share one write', async () => {
    group = new SettlementGroup(write, 1, 5, () => true);
    const settled = [group.submit(request('a')), group.submit(request('b'))];
    await vi.advanceTimersByTimeAsync(4);
    expect(writes).toEqual([]);
    settled.push(group.submit(request('c')));
    await vi.advanceTimersByTimeAsync(1);
    await Promise.all(settled);
    expect(writes).toEqual([['a', 'b', 'c']]);
  });

  test('once the waiting settlements may not wait any longer, they go out at once', async () => {
    group = new SettlementGroup(write, 1, 5, (requests) => requests.length < 3);
    const settled = [group.submit(request('a')), group.submit(request('b'))];
    expect(writes).toEqual([]);
    settled.push(group.submit(request('c')));
    await Promise.all(settled);
    expect(writes).toEqual([['a', 'b', 'c']]);
  });

  test('waiting for idle writes the held settlements at once', async () => {
    group = new SettlementGroup(write, 1, 1000, () => true);
    const settled = group.submit(request('a'));
    await group.idle();
    await settled;
    expect(writes).toEqual([['a']]);
    // After the flush, holding resumes for what comes next.
    void group.submit(request('b'));
    await vi.advanceTimersByTimeAsync(10);
    expect(writes).toEqual([['a']]);
    await vi.advanceTimersByTimeAsync(990);
    expect(writes).toEqual([['a'], ['b']]);
  });
});
