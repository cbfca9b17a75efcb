import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EgressHealth } from './egress-health.js';
import type { EgressMetrics } from './egress-metrics.js';

/** What the endpoints serve: `/metrics` from `metrics`, `/readyz` from `health`, `/healthz` always. */
export interface ObservabilityEndpoints {
  metrics?: EgressMetrics;
  health?: EgressHealth;
}

interface EndpointResponse {
  status: number;
  contentType: string;
  body: string;
}

const json = (status: number, body: unknown): EndpointResponse => ({ status, contentType: 'application/json; charset=utf-8', body: `${JSON.stringify(body)}\n` });

/** Answers a request for one of the endpoints, or `undefined` when the path is none of them. */
async function respond(endpoints: ObservabilityEndpoints, method: string, pathname: string): Promise<EndpointResponse | undefined> {
  const known = (pathname === '/metrics' && endpoints.metrics) || pathname === '/healthz' || (pathname === '/readyz' && endpoints.health);
  if (!known) return undefined;
  if (method !== 'GET' && method !== 'HEAD') return json(405, { error: `${method} is not allowed on ${pathname}; use GET` });
  if (pathname === '/healthz') return json(200, { status: 'alive' });
  if (pathname === '/metrics') return { status: 200, contentType: endpoints.metrics!.prometheusContentType, body: await endpoints.metrics!.prometheus() };
  const readiness = await endpoints.health!.readiness();
  return json(readiness.ready ? 200 : 503, { status: readiness.ready ? 'ready' : 'unready', ...readiness });
}

/**
 * A `node:http` request handler for `/metrics`, `/healthz` and `/readyz`, to mount in a server of
 * your own. Other paths go to `next` when given (Express and Connect style), else get a 404.
 */
export function createObservabilityHandler(endpoints: ObservabilityEndpoints): (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void) => void {
  return (request, response, next) => {
    const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
    respond(endpoints, request.method ?? 'GET', pathname).then(
      (answer) => {
        if (!answer) {
          if (next) return next();
          answer = json(404, { error: `no endpoint at ${pathname}` });
        }
        response.writeHead(answer.status, { 'content-type': answer.contentType, 'cache-control': 'no-store' });
        response.end(request.method === 'HEAD' ? undefined : answer.body);
      },
      (error: unknown) => {
        if (next) return next(error);
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        response.end('internal error while collecting metrics\n');
      },
    );
  };
}

/**
 * A fetch-style handler (`Request` in, `Response` out) for `/metrics`, `/healthz` and `/readyz`,
 * for Hono, Next.js route handlers, Bun or Deno. Other paths resolve to `undefined`.
 */
export function createObservabilityFetchHandler(endpoints: ObservabilityEndpoints): (request: Request) => Promise<Response | undefined> {
  return async (request) => {
    const answer = await respond(endpoints, request.method, new URL(request.url).pathname);
    if (!answer) return undefined;
    return new Response(request.method === 'HEAD' ? null : answer.body, { status: answer.status, headers: { 'content-type': answer.contentType, 'cache-control': 'no-store' } });
  };
}
