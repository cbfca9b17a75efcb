import pg, { type Pool, type PoolClient, type QueryConfig, type QueryResult, type QueryResultRow } from 'pg';
import { ConnectionStatus } from './connection-status.js';
import { ConnectionTimeout, asStoreError, describeConnectionFailure, isConnectionFailure } from './connection-failure.js';

export interface DatabaseConnectionOptions {
  readonly connectionString: string | undefined;
  readonly pool: Pool | undefined;
  /** Longest wait for a connection, new or from the pool. */
  readonly connectTimeout: number;
  /** Longest one operation (a statement, or a whole transaction) may take before its connection is given up. */
  readonly queryTimeout: number;
  /** Connections of the store's own pool kept open however long they sit idle, besides a worker's LISTEN connection. */
  readonly idleConnections: number;
  /** How long a connection beyond `idleConnections` may sit idle before it is closed. */
  readonly idleTimeout: number;
}

/** TCP keep-alive probes start after this much silence, so a connection to a vanished host is noticed. */
const keepAliveDelay = 10_000;

/**
 * Every connection the store uses goes through here. A checked-out connection always has an `'error'`
 * listener (node-postgres emits `'error'` on a client whose socket dies, and an unheard `'error'`
 * ends the process); a connection that broke, or that took longer than `queryTimeout`, is destroyed
 * rather than returned to the pool; a transaction that failed is rolled back (or left to the server,
 * which rolls back a transaction whose connection died). Failures to reach the database come out as
 * `EgressStoreUnavailableError`, and each outcome updates the store's `ConnectionStatus`.
 */
export class DatabaseConnection {
  private readonly pool: Pool;
  private readonly ownsPool: boolean;
  /** A pool passed in has no connect timeout of ours (node-postgres applies it only to pools it creates), so connects are timed here. */
  private readonly timesConnects: boolean;

  /** Set once the schema has been created or checked; every operation but that one waits for it. */
  private schemaReady = false;
  private preparing: Promise<void> | undefined;
  /** The owned pool's connections, so that `end` can close the sockets of any whose server stopped answering. */
  private readonly clients = new Set<pg.Client>();

  constructor(
    private readonly options: DatabaseConnectionOptions,
    private readonly status: ConnectionStatus,
    /** Creates or checks the schema on a fresh connection; its errors other than connectivity are final. */
    private readonly prepareSchema: (client: PoolClient) => Promise<void>,
  ) {
    if (options.pool) {
      this.pool = options.pool;
      this.ownsPool = false;
      this.timesConnects = true;
    } else {
      this.pool = new pg.Pool({
        connectionString: options.connectionString,
        application_name: 'egress',
        connectionTimeoutMillis: options.connectTimeout,
        // The pool counts the connection a worker holds for LISTEN among those it keeps.
        min: options.idleConnections === 0 ? 0 : options.idleConnections + 1,
        idleTimeoutMillis: options.idleTimeout,
        // Connections kept idle must not keep a process that forgot to close the store from exiting.
        allowExitOnIdle: true,
        keepAlive: true,
        keepAliveInitialDelayMillis: keepAliveDelay,
      });
      this.ownsPool = true;
      this.timesConnects = false;
      this.pool.on('connect', (client) => {
        this.clients.add(client);
        client.once('end', () => this.clients.delete(client));
      });
    }
    // An idle connection that breaks is dropped by the pool; without a listener its 'error' would end
    // the process. A pool passed in that already has a listener keeps its owner's handling.
    if (this.ownsPool || this.pool.listenerCount('error') === 0) this.pool.on('error', () => undefined);
  }

  /** Connects and prepares the schema, once; called again after it failed to reach the database. */
  open(): Promise<void> {
    if (this.schemaReady) return Promise.resolve();
    this.preparing ??= this.run(this.prepareSchema, 'opening the queue', false)
      .then(() => {
        this.schemaReady = true;
        this.status.markOpened();
      })
      .finally(() => (this.preparing = undefined));
    return this.preparing;
  }

  get opened(): boolean {
    return this.schemaReady;
  }

  /** One statement on a pooled connection (a transaction of its own). */
  query<Row extends QueryResultRow = QueryResultRow>(statement: string | QueryConfig, values?: readonly unknown[], doing = 'running a statement'): Promise<QueryResult<Row>> {
    if (typeof statement !== 'string') return this.withClient((client) => client.query<Row>(statement), doing, false);
    return this.withClient((client) => client.query<Row>(statement, values as unknown[] | undefined), doing, false);
  }

  /** Runs `work` between BEGIN and COMMIT on one connection; anything that fails leaves nothing written. */
  transaction<T>(work: (client: PoolClient) => Promise<T>, doing = 'running a transaction'): Promise<T> {
    return this.withClient(work, doing, true);
  }

  /**
   * Runs `work` on one pooled connection, under the operation timeout. When the connection dies
   * mid-way the statement in flight fails, and so does the whole operation.
   */
  async withClient<T>(work: (client: PoolClient) => Promise<T>, doing: string, transaction = false): Promise<T> {
    if (!this.schemaReady) await this.open();
    return this.run(work, doing, transaction);
  }

  /** `transaction`: true to wrap `work` in BEGIN and COMMIT. */
  private async run<T>(work: (client: PoolClient) => Promise<T>, doing: string, transaction: boolean): Promise<T> {
    const client = await this.checkOut(doing);
    let lost: unknown;
    const onError = (error: unknown) => {
      lost ??= error;
    };
    client.on('error', onError);
    // Ending a client with a statement in flight destroys its socket, which fails that statement at once.
    const timer = setTimeout(() => {
      lost ??= new ConnectionTimeout(`no answer within ${this.options.queryTimeout} ms`);
      client.end().catch(() => undefined);
    }, this.options.queryTimeout);
    let discard: unknown;
    try {
      if (transaction) await client.query('BEGIN');
      const result = await work(client);
      if (transaction) await client.query('COMMIT');
      if (lost !== undefined) discard = lost;
      this.status.succeeded();
      return result;
    } catch (error) {
      const failure = lost ?? error;
      if (isConnectionFailure(failure)) {
        // The server rolls back a transaction whose connection is gone; the connection is not reused.
        discard = failure;
        this.failed(failure);
        throw asStoreError(failure, doing);
      }
      // A statement was refused (not the connection): the database was reached.
      this.status.succeeded();
      if (transaction) {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          discard = rollbackError;
        });
      }
      throw error;
    } finally {
      clearTimeout(timer);
      client.off('error', onError);
      // Releasing with an error removes the connection from the pool and closes it.
      client.release(discard === undefined ? undefined : discard instanceof Error ? discard : true);
    }
  }

  /**
   * A connection kept by the caller (the LISTEN connection). The caller must listen for `'error'`
   * before this resolves' next tick and release it with `true` when it breaks.
   */
  async dedicated(doing: string): Promise<PoolClient> {
    const client = await this.checkOut(doing);
    this.status.succeeded();
    return client;
  }

  /** Runs one statement on a dedicated connection under the operation timeout; a timeout ends the connection. */
  async onDedicated(client: PoolClient, text: string, doing: string): Promise<void> {
    const timer = setTimeout(() => client.end().catch(() => undefined), this.options.queryTimeout);
    try {
      await client.query(text);
    } catch (error) {
      if (isConnectionFailure(error)) this.failed(error);
      throw asStoreError(error, doing);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Opens `count` connections at once (the pool keeps them) and runs `work` on each inside a
   * transaction that is rolled back, so that each connection has parsed the store's named statements
   * and loaded the catalog entries they use before the first claim, settlement or write needs it.
   * Gives up after `limit` ms, ending the connections still busy. Never fails: a connection that
   * cannot be had or breaks is left to the operations that follow, which report it as they do today.
   */
  async warm(count: number, work: (client: PoolClient) => Promise<void>, limit: number): Promise<void> {
    const busy = new Set<PoolClient>();
    let expired = false;
    const warmOne = async () => {
      let client: PoolClient | undefined;
      let broken = false;
      const onError = () => {
        broken = true;
      };
      try {
        client = await this.pool.connect();
        client.on('error', onError);
        if (expired) return;
        busy.add(client);
        await client.query('BEGIN');
        await work(client);
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      } finally {
        if (client) {
          busy.delete(client);
          client.off('error', onError);
          // A connection whose transaction did not end cleanly is not given to anyone else.
          client.release(broken || undefined);
        }
      }
    };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        expired = true;
        // Ending a client with a statement in flight fails that statement at once, which releases it.
        for (const client of busy) client.end().catch(() => undefined);
        resolve();
      }, limit);
    });
    await Promise.race([Promise.all(Array.from({ length: count }, warmOne)), deadline]);
    clearTimeout(timer);
  }

  /** Records a connectivity failure seen outside this class (e.g. on the LISTEN connection). */
  failed(error: unknown): void {
    this.status.failed(describeConnectionFailure(error));
  }

  async end(): Promise<void> {
    if (!this.ownsPool) return;
    await this.pool.end();
    // A graceful end sends Terminate and waits for the server to close the socket; a server behind a
    // dead route never does, and the open socket would keep the process from exiting.
    for (const client of this.clients) (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
    this.clients.clear();
  }

  private async checkOut(doing: string): Promise<PoolClient> {
    try {
      return await (this.timesConnects ? this.connectWithin() : this.pool.connect());
    } catch (error) {
      if (isConnectionFailure(error)) this.failed(error);
      throw asStoreError(error, doing);
    }
  }

  /** `pool.connect()` bounded by `connectTimeout`; a connection that arrives after the deadline goes back to the pool. */
  private connectWithin(): Promise<PoolClient> {
    return new Promise<PoolClient>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new ConnectionTimeout(`no connection within ${this.options.connectTimeout} ms`));
      }, this.options.connectTimeout);
      this.pool.connect().then(
        (client) => {
          clearTimeout(timer);
          if (settled) client.release();
          else resolve(client);
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (!settled) reject(error);
        },
      );
    });
  }
}
