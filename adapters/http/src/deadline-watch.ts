/**
 * A request the watch can hold. The watch links its requests to one another rather than keeping
 * them in a Set: with a Set, and two clients taking turns, about a fifth of what each request
 * allocated survived minor collections (against under 1% with the links), most likely through the
 * Set's outgrown tables, which keep pointing at what they held until a full collection.
 */
export abstract class WatchedRequest {
  previousWatched: WatchedRequest | undefined = undefined;
  nextWatched: WatchedRequest | undefined = undefined;

  /** Ends the request with a timeout or an abort when its deadline passed or its delivery was aborted. */
  abstract check(now: number): void;
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
  private first: WatchedRequest | undefined;
  private timer: NodeJS.Timeout | undefined;

  add(request: WatchedRequest): void {
    request.nextWatched = this.first;
    if (this.first) this.first.previousWatched = request;
    this.first = request;
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), watchInterval);
      // Requests in flight keep the process alive through their sockets; the watch alone must not.
      this.timer.unref();
    }
  }

  /** Removes a request the watch holds; call it once per request added. */
  delete(request: WatchedRequest): void {
    const { previousWatched: previous, nextWatched: next } = request;
    if (previous) previous.nextWatched = next;
    else this.first = next;
    if (next) next.previousWatched = previous;
    request.previousWatched = undefined;
    request.nextWatched = undefined;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    // Stopping here rather than when the last request ends spares a busy client a timer per request.
    if (this.first === undefined) {
      this.stop();
      return;
    }
    const now = performance.now();
    for (let request: WatchedRequest | undefined = this.first; request !== undefined; ) {
      // Checking can end the request and unlink it, so its successor is read first.
      const next: WatchedRequest | undefined = request.nextWatched;
      request.check(now);
      request = next;
    }
  }
}
