import { isIP } from 'node:net';
import type { DeliveryContext } from '@egress/core';
import { Agent, buildConnector, interceptors, type Dispatcher } from 'undici';
import { checkAddress, guardedLookup } from './address-guard.js';
import { DeadlineWatch } from './deadline-watch.js';
import { crossOriginHeaderFilter } from './redirect-headers.js';
import { HttpExchange, type BodyLimits, type ResponseReader } from './http-exchange.js';
import type { ResolvedHttpOptions } from './http-options.js';
import type { PreparedRequest } from './request-builder.js';

/**
 * One undici Agent per destination: a bounded keep-alive pool per origin, and, with the guard on,
 * a connector that checks the very address each socket is opened to.
 */
export class HttpClient {
  private agent: Agent | undefined;
  /** The agent behind the redirect interceptor when redirects are followed, the agent itself otherwise. */
  private redirecting: Dispatcher | undefined;
  private readonly watch = new DeadlineWatch();

  constructor(private readonly options: ResolvedHttpOptions) {}

  /** The dispatcher for a method, made on first use: a destination that never sends opens nothing. */
  private dispatcherFor(method: string): Dispatcher {
    if (!this.agent || !this.redirecting) {
      const allow = this.options.guard;
      let connect: buildConnector.connector | undefined;
      if (allow) {
        const base = buildConnector({ lookup: guardedLookup(allow) } as buildConnector.BuildOptions);
        // An IP literal never reaches `lookup`, so it is checked here.
        connect = (connectOptions, callback) => {
          const host = connectOptions.hostname.replace(/^\[(.*)\]$/, '$1');
          const refusal = isIP(host) ? checkAddress(host, host, allow) : undefined;
          if (refusal) {
            callback(refusal, null);
            return;
          }
          base(connectOptions, callback);
        };
      }
      this.agent = new Agent({
        connections: this.options.connectionsPerOrigin,
        keepAliveTimeout: this.options.keepAliveTimeout,
        ...(connect ? { connect } : {}),
      });
      this.redirecting =
        this.options.maxRedirections > 0
          ? this.agent.compose(crossOriginHeaderFilter(this.options.crossOriginHeaders), interceptors.redirect({ maxRedirections: this.options.maxRedirections }))
          : this.agent;
    }
    // CONNECT opens a tunnel; there is nothing to redirect.
    return method === 'CONNECT' ? this.agent : this.redirecting;
  }

  /**
   * Sends one request and hands the complete response to `read`, all under one deadline that runs
   * from before the connect to the last byte, and under the delivery's abort signal. Only the start
   * of the body is kept, as `limits` allow for its status.
   */
  exchange<T>(request: PreparedRequest, context: DeliveryContext, limits: BodyLimits, read: ResponseReader<T>): Promise<T> {
    const exchange = new HttpExchange(request, context, limits, read, this.watch);
    try {
      // CONNECT only opens a tunnel; a body would travel as the tunnel's first bytes.
      const body = request.method === 'CONNECT' ? null : request.body ?? null;
      // The exchange's own deadline covers connect to last byte; undici's header and body timers
      // (300 s) would only duplicate it, and re-arming them on each reuse of a connection leaves
      // short-lived timers behind for the garbage collector.
      this.dispatcherFor(request.method).dispatch({ origin: request.target.origin, path: request.target.path, method: request.method, headers: request.headers, body, headersTimeout: 0, bodyTimeout: 0 }, exchange);
    } catch (error) {
      // The redirect interceptor can refuse options before undici's own dispatch catches anything.
      exchange.failWith(error);
    }
    return exchange.result;
  }

  /** Lets in-flight requests finish, then closes every pooled connection. */
  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    this.redirecting = undefined;
    await agent?.close();
    this.watch.stop();
  }
}
