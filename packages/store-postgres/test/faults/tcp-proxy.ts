import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

interface Flow {
  readonly client: Socket;
  upstream: Socket | undefined;
  /** Messages the client sent since the proxy was armed. */
  sent: number;
}

interface ArmedCut {
  /** Cut the connection on the n-th statement a client sends after arming (1 = the first). */
  readonly atStatement: number;
  /** true: the statement reaches PostgreSQL and only its answer is lost; false: it never arrives. */
  readonly forward: boolean;
  /** Statements matching this are not counted (e.g. the store's periodic capacity count). */
  readonly ignore?: RegExp;
  cut?: boolean;
}

/**
 * A TCP proxy between the store and PostgreSQL that fails the way networks and databases fail:
 * `refuse` resets every new connection (as a stopped server does), `blackhole` accepts connections
 * and lets nothing through either way (a dead route: connections hang until someone times out),
 * `cut` drops every open connection at once, and `armCut` cuts one connection at a chosen statement.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly flows = new Set<Flow>();
  private mode: 'pass' | 'refuse' | 'blackhole' = 'pass';
  private armed: ArmedCut | undefined;
  /** Connections accepted, for tests that check a reconnect happened. */
  accepted = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Starts on an ephemeral port; returns `url` with its host and port replaced by the proxy's. */
  async start(url: string): Promise<string> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((done) => this.server!.listen(0, '127.0.0.1', () => done()));
    const address = this.server.address() as AddressInfo;
    const proxied = new URL(url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(address.port);
    return proxied.toString();
  }

  /** New connections are reset; open ones are cut. */
  refuse(): void {
    this.mode = 'refuse';
    this.cut();
  }

  /** Nothing passes, in either direction, on new or open connections, until `restore`. */
  blackhole(): void {
    this.mode = 'blackhole';
    for (const flow of this.flows) {
      flow.client.pause();
      flow.upstream?.pause();
    }
  }

  /** Back to normal. Connections held by a blackhole carry on, as after a network heals. */
  restore(): void {
    this.mode = 'pass';
    for (const flow of this.flows) {
      if (!flow.upstream) this.connectUpstream(flow);
      flow.client.resume();
      flow.upstream?.resume();
    }
  }

  /** Drops every open connection, as a restarted database or a broken route does. */
  cut(): void {
    for (const flow of [...this.flows]) this.drop(flow);
  }

  /** Cuts the next connection that sends its `atStatement`-th statement after now. */
  armCut(cut: ArmedCut): void {
    for (const flow of this.flows) flow.sent = 0;
    this.armed = { ...cut };
  }

  /** Whether the armed cut happened; disarms. */
  disarm(): boolean {
    const happened = this.armed?.cut === true;
    this.armed = undefined;
    return happened;
  }

  /** The most statements one connection sent since the proxy was armed. */
  get statements(): number {
    let most = 0;
    for (const flow of this.flows) most = Math.max(most, flow.sent);
    return most;
  }

  get connections(): number {
    return this.flows.size;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((done) => (this.server ? this.server.close(() => done()) : done()));
  }

  private accept(client: Socket): void {
    this.accepted += 1;
    if (this.mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    const flow: Flow = { client, upstream: undefined, sent: 0 };
    this.flows.add(flow);
    client.on('error', () => this.drop(flow));
    client.on('close', () => this.drop(flow));
    client.on('data', (chunk: Buffer) => this.fromClient(flow, chunk));
    if (this.mode === 'blackhole') client.pause();
    else this.connectUpstream(flow);
  }

  private connectUpstream(flow: Flow): void {
    const upstream = connect(this.targetPort, this.targetHost);
    flow.upstream = upstream;
    upstream.on('error', () => this.drop(flow));
    upstream.on('close', () => this.drop(flow));
    upstream.on('data', (chunk: Buffer) => {
      if (!flow.client.destroyed) flow.client.write(chunk);
    });
  }

  private fromClient(flow: Flow, chunk: Buffer): void {
    const armed = this.armed;
    // Each statement node-postgres sends starts with a Parse ('P') or simple Query ('Q') message, or
    // with Bind ('B') when it runs a statement this connection has prepared before.
    if (armed && !armed.cut && (chunk[0] === 0x50 || chunk[0] === 0x51 || chunk[0] === 0x42) && !(armed.ignore && armed.ignore.test(chunk.toString('latin1')))) {
      flow.sent += 1;
      if (flow.sent === armed.atStatement) {
        armed.cut = true;
        if (armed.forward && flow.upstream) {
          // The statement reaches the server; the connection dies before its answer comes back.
          flow.upstream.write(chunk, () => setTimeout(() => this.drop(flow), 20));
          flow.upstream.removeAllListeners('data');
        } else {
          this.drop(flow);
        }
        return;
      }
    }
    if (flow.upstream && !flow.upstream.destroyed) flow.upstream.write(chunk);
  }

  private drop(flow: Flow): void {
    if (!this.flows.delete(flow)) return;
    flow.client.destroy();
    flow.upstream?.destroy();
  }
}
