import type { StoreStatus } from '@egress/core';

/**
 * Where the store stands with PostgreSQL, judged from the outcome of its real operations: the first
 * one that cannot reach the database makes it `unreachable`, the first one that succeeds afterwards
 * `connected` again. Listeners hear each change of state or of the spooled count, once.
 */
export class ConnectionStatus {
  private state: StoreStatus['state'] = 'connecting';
  private since = Date.now();
  private error: string | undefined;
  private spooled: number | undefined;
  /** Set once the schema is known to be ready; before that a successful query is not yet "connected". */
  private opened = false;
  private readonly listeners = new Set<(status: StoreStatus) => void>();

  current(): StoreStatus {
    const status: { -readonly [Key in keyof StoreStatus]: StoreStatus[Key] } = { state: this.state, since: this.since };
    if (this.error !== undefined) status.error = this.error;
    if (this.spooled !== undefined) status.spooled = this.spooled;
    return status;
  }

  get reachable(): boolean {
    return this.state === 'connected';
  }

  onChange(listener: (status: StoreStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The schema is migrated and the store is usable. */
  markOpened(): void {
    this.opened = true;
    this.succeeded();
  }

  succeeded(): void {
    if (!this.opened || this.state === 'connected') return;
    this.state = 'connected';
    this.since = Date.now();
    this.error = undefined;
    this.emit();
  }

  failed(reason: string): void {
    if (this.state === 'unreachable') return;
    this.state = 'unreachable';
    this.since = Date.now();
    this.error = reason;
    this.emit();
  }

  setSpooled(count: number): void {
    if (this.spooled === count) return;
    this.spooled = count;
    this.emit();
  }

  private emit(): void {
    const status = this.current();
    for (const listener of [...this.listeners]) {
      try {
        listener(status);
      } catch {
        // Whoever listens must not break the operation that changed the status.
      }
    }
  }
}
