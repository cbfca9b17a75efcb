import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** What the receiver answered. */
  status: number;
}

/**
 * A webhook receiver on loopback that fails on purpose: `answer` decides the status of each request
 * from its body and how many times that body was seen before, so a demo can show retries and a
 * dead letter.
 */
export async function startHttpReceiver(answer: (body: string, seenBefore: number) => number) {
  const requests: ReceivedRequest[] = [];
  const seen = new Map<string, number>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const before = seen.get(body) ?? 0;
      seen.set(body, before + 1);
      const status = answer(body, before);
      requests.push({ method: request.method ?? 'GET', path: request.url ?? '/', headers: request.headers, body, status });
      response.writeHead(status, { 'content-type': 'application/json' }).end(status < 300 ? '{"ok":true}' : status >= 500 ? '{"error":"try again later"}' : '{"error":"order rejected"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
