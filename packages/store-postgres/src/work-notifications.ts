import type { PoolClient } from 'pg';
import type { DatabaseConnection } from './database-connection.js';
import { EmptyClaimBackoff } from './empty-claim-backoff.js';

type Listener = (destination: string | undefined) => void;

/**
 * Wakes idle workers when another process enqueues or releases work: one connection per store
 * LISTENs on the schema's channel, and each notification names the destination that has work. A
 * worker whose last claims for a destination found nothing hears of it a moment later
 * (`EmptyClaimBackoff`). A timer calls listeners every `pollInterval` as a fallback for
 * notifications lost while the connection was down.
 */
export class WorkNotifications {
  private readonly listeners = new Set<Listener>();
  private client: PoolClient | undefined;
  private connecting: Promise<void> | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly backoff = new EmptyClaimBackoff((destination) => this.emit(destination));

  constructor(
    private readonly pool: DatabaseConnection,
    private readonly channel: string,
    /** This store's own notifications carry it and are not passed on. */
    private readonly source: string,
    private readonly pollInterval: number,
  ) {}

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    this.ensureStarted();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopPolling();
    };
  }

  /** Records what a claim for `destination` found, which decides how soon its next notification wakes this store's worker. */
  claimed(destination: string, found: boolean): void {
    this.backoff.claimed(destination, found);
  }

  private emit(destination: string | undefined): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(destination);
      } catch {
        // A listener's failure must not stop the others from waking.
      }
    }
  }

  private ensureStarted(): void {
    if (this.stopped || this.listeners.size === 0) return;
    if (!this.pollTimer) {
      this.pollTimer = setInterval(() => this.emit(undefined), this.pollInterval);
      this.pollTimer.unref();
    }
    if (!this.client && !this.connecting) this.connecting = this.connect().finally(() => (this.connecting = undefined));
  }

  private async connect(): Promise<void> {
    let client: PoolClient | undefined;
    try {
      client = await this.pool.dedicated('listening for new work');
      const connected = client;
      connected.on('notification', (message) => {
        if (message.channel !== this.channel || !message.payload) return;
        const space = message.payload.indexOf(' ');
        if (message.payload.slice(0, space) === this.source) return;
        const destination = message.payload.slice(space + 1);
        if (destination) this.backoff.notified(destination);
        else this.emit(undefined);
      });
      connected.on('error', () => this.lost(connected));
      connected.on('end', () => this.lost(connected));
      await this.pool.onDedicated(connected, `LISTEN "${this.channel}"`, 'listening for new work');
      if (this.stopped) {
        connected.release(true);
        return;
      }
      this.client = connected;
    } catch {
      client?.release(true);
      this.scheduleReconnect();
    }
  }

  /**
   * Listens on a fresh connection: after an outage the old one may look alive (a blackholed socket
   * says nothing) while its notifications no longer arrive. Work enqueued meanwhile is looked for at once.
   */
  renew(): void {
    const client = this.client;
    if (client) this.lost(client);
    else this.emit(undefined);
  }

  private lost(client: PoolClient): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.release(true);
    // Work may have been enqueued while nobody listened.
    this.emit(undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.ensureStarted();
    }, 1000);
    this.reconnectTimer.unref();
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.listeners.clear();
    this.stopPolling();
    this.backoff.stop();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    await this.connecting;
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await this.pool.onDedicated(client, `UNLISTEN "${this.channel}"`, 'closing');
        client.release();
      } catch {
        client.release(true);
      }
    }
  }
}
