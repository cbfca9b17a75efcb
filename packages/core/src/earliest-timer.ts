/**
 * One timer for "call me at the earliest of these times": asking for a later time than the one
 * armed changes nothing, an earlier one moves it. What the lanes and the circuit breaker's probes
 * use to wake up, so that many reasons to look again cost one timer.
 */
export class EarliestTimer {
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Number.POSITIVE_INFINITY;

  constructor(
    private readonly fire: () => void,
    /** Whether a pending timer should keep the process alive. */
    private readonly holdsProcess = true,
  ) {}

  at(time: number): void {
    if (time >= this.armedFor) return;
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = time;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.armedFor = Number.POSITIVE_INFINITY;
      this.fire();
    }, Math.max(0, time - Date.now()));
    if (!this.holdsProcess) this.timer.unref();
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
  }
}
