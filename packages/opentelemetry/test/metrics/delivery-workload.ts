import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEgress, type Egress, type Store } from '@egress/core';
import { http } from '@egress/http';

/**
 * A webhook receiver that answers by the event's `kind`: `ok` 200, `flaky` 503 on its first request
 * and 200 after, `bad` 422. Records what it accepted.
 */
export async function startReceiver(): Promise<{ url: string; accepted: string[]; close(): Promise<void> }> {
  const accepted: string[] = [];
  const seen = new Set<string>();
  const server: Server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const { kind, n } = JSON.parse(body) as { kind: string; n: number };
      const key = `${kind}-${n}`;
      const firstTime = !seen.has(key);
      seen.add(key);
      const status = kind === 'bad' ? 422 : kind === 'flaky' && firstTime ? 503 : 200;
      if (status === 200) accepted.push(key);
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    accepted,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** An engine delivering to the receiver one event per batch, retrying fast. */
export function webhookEgress(store?: Store): Egress<[ReturnType<typeof http>]> {
  return createEgress({
    destinations: [http()],
    ...(store ? { store } : {}),
    policies: { http: { batch: { maxEvents: 1 }, retry: { initialDelay: 10, maxDelay: 20 } } },
  });
}

/**
 * Three events delivered at once, one retried once then delivered (503), one dead-lettered (422):
 * six delivery attempts, four events delivered, one retry, one dead letter.
 */
export async function runKnownWorkload(egress: Egress<[ReturnType<typeof http>]>, url: string): Promise<void> {
  const sends: [string, number][] = [
    ['ok', 1],
    ['ok', 2],
    ['ok', 3],
    ['flaky', 1],
    ['bad', 1],
  ];
  for (const [kind, n] of sends) egress.send.http({ method: 'POST', url, data: { kind, n } });
  await egress.flush();
}
