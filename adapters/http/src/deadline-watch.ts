/** What the watch asks of a request in flight. */
export interface WatchedRequest {
  /** Ends the request with a timeout or an abort when its deadline passed or its delivery was aborted. */
  check(now: number): void;
}

// How often requests in flight are checked. A request times out at most this much after its
// deadline; a timeout is a floor ("at least 5 s"), and a few milliseconds beyond it harm nobody.
export const watchInterval = 10;

/**
 * One timer for every request of a client in flight, instead of a timer and an abort listener per
 * request: starting and clearing those cost more than the rest of a keep-alive request's own work.
 * The timer runs only while requests are in flight.
 */
export class DeadlineWatch {
  private readonly watched = new Set<WatchedRequest>();
  private timer: NodeJS.Timeout | undefined;

  add(request: WatchedRequest): void {
    this.watched.add(request);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), watchInterval);
      // Requests in flight keep the process alive through their sockets; the watch alone must not.
      this.timer.unref();
    }
  }

  delete(request: WatchedRequest): void {
    this.watched.delete(request);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    // Stopping here rather than when the last request ends spares a busy client a timer per request.
    if (this.watched.size === 0) {
      this.stop();
      return;
    }
    const now = performance.now();
    for (const request of this.watched) request.check(now);
  }
}
