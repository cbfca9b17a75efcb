import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { DeadlineWatch, WatchedRequest, watchInterval } from '../src/deadline-watch.js';

/** A request that records when it was checked and can leave the watch when checked. */
class RecordingRequest extends WatchedRequest {
  readonly checks: number[] = [];

  constructor(
    readonly name: string,
    private readonly onCheck: (request: RecordingRequest) => void = () => {},
  ) {
    super();
  }

  check(now: number): void {
    this.checks.push(now);
    this.onCheck(this);
  }
}

describe('http: the deadline watch', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  test('checks every request it holds on each interval, and none it no longer holds', () => {
    const watch = new DeadlineWatch();
    const [first, middle, last] = ['first', 'middle', 'last'].map((name) => new RecordingRequest(name));
    for (const request of [first!, middle!, last!]) watch.add(request);
    watch.delete(middle!);
    vi.advanceTimersByTime(watchInterval * 2);
    expect(first!.checks).toHaveLength(2);
    expect(last!.checks).toHaveLength(2);
    expect(middle!.checks).toHaveLength(0);
    watch.delete(first!);
    watch.delete(last!);
    watch.stop();
  });

  test('goes on to the other requests when a check ends the request it checks', () => {
    const watch = new DeadlineWatch();
    const leaving = (request: RecordingRequest) => watch.delete(request);
    const requests = ['a', 'b', 'c', 'd'].map((name) => new RecordingRequest(name, name === 'b' || name === 'd' ? leaving : undefined));
    for (const request of requests) watch.add(request);
    vi.advanceTimersByTime(watchInterval);
    vi.advanceTimersByTime(watchInterval);
    expect(requests.map((request) => request.checks.length)).toEqual([2, 1, 2, 1]);
    watch.stop();
  });

  test('stops its timer once no request is left, and starts it again for the next', () => {
    const watch = new DeadlineWatch();
    const request = new RecordingRequest('only');
    watch.add(request);
    expect(vi.getTimerCount()).toBe(1);
    watch.delete(request);
    vi.advanceTimersByTime(watchInterval);
    expect(vi.getTimerCount()).toBe(0);
    const next = new RecordingRequest('next');
    watch.add(next);
    vi.advanceTimersByTime(watchInterval);
    expect(next.checks).toHaveLength(1);
    watch.stop();
  });
});
