/** The first hold after a claim that found nothing, in milliseconds; each further empty claim doubles it. */
const firstHold = 1;
/** The longest hold: how late, at most, a worker that keeps losing the race hears of new work. */
const longestHold = 16;

interface Hold {
  /** Length of the current hold, doubled by each empty claim in a row. */
  length: number;
  until: number;
  /** The one wake-up that answers every notification that arrived during the hold. */
  timer: NodeJS.Timeout | undefined;
}

/**
 * Every idle worker hears every notification, and each would answer it with a claim; with several
 * workers, all but one of those claims find the events already taken and cost the database a
 * transaction for nothing. A worker whose claim for a destination found nothing holds back its
 * next wake-ups for that destination a little (1 ms, doubling with each empty claim in a row, at
 * most 16 ms) and answers all the notifications of that moment with one claim. A claim that finds
 * work ends the hold, so a worker that has work hears of more at once.
 */
export class EmptyClaimBackoff {
  private readonly holds = new Map<string, Hold>();

  constructor(private readonly wake: (destination: string) => void) {}

  /** Records what a claim for `destination` found. */
  claimed(destination: string, found: boolean, now = Date.now()): void {
    const hold = this.holds.get(destination);
    if (found) {
      if (hold && !hold.timer) this.holds.delete(destination);
      else if (hold) hold.length = 0;
      return;
    }
    const length = hold && hold.length > 0 ? Math.min(hold.length * 2, longestHold) : firstHold;
    if (hold) {
      hold.length = length;
      hold.until = Math.max(hold.until, now + length);
    } else {
      this.holds.set(destination, { length, until: now + length, timer: undefined });
    }
  }

  /** A notification for `destination`: passed on now, or once the destination's hold ends. */
  notified(destination: string, now = Date.now()): void {
    const hold = this.holds.get(destination);
    if (!hold || hold.until <= now) return this.wake(destination);
    if (hold.timer) return;
    hold.timer = setTimeout(() => {
      hold.timer = undefined;
      if (hold.length === 0) this.holds.delete(destination);
      this.wake(destination);
    }, hold.until - now);
    hold.timer.unref();
  }

  stop(): void {
    for (const hold of this.holds.values()) if (hold.timer) clearTimeout(hold.timer);
    this.holds.clear();
  }
}
