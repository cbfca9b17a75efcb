// A node:http receiver in a child process of its own, so that its work does not share the sender's
// event loop and distort what a benchmark measures: it answers every request 200 once the body is
// read, and counts requests and the connections they came on.
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

export interface ReceiverCounts {
  /** Requests answered since the start or the last reset. */
  readonly count: number;
  /** Connections opened since the start or the last reset. */
  readonly connections: number;
}

export interface CountingReceiver {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  counts(): Promise<ReceiverCounts>;
  /** Sets both counts back to 0. */
  reset(): Promise<ReceiverCounts>;
  /** Closes the server and waits for the child process to exit. */
  stop(): Promise<void>;
}

type Request = 'count' | 'reset' | 'stop';
type Reply = { port: number } | ReceiverCounts;

/** Forks the receiver (through tsx, as the benchmarks run) and waits until it listens. */
export async function startCountingReceiver(): Promise<CountingReceiver> {
  const child = fork(fileURLToPath(import.meta.url), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const next = () => new Promise<Reply>((resolve) => child.once('message', resolve));
  const { port } = (await next()) as { port: number };
  const ask = async (request: Request) => {
    const reply = next();
    child.send(request);
    return (await reply) as ReceiverCounts;
  };
  return {
    origin: `http://127.0.0.1:${port}`,
    counts: () => ask('count'),
    reset: () => ask('reset'),
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send('stop' satisfies Request);
      await exited;
    },
  };
}

function serve(): void {
  let count = 0;
  let connections = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      count++;
      response.end('ok');
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send!({ port: typeof address === 'object' && address ? address.port : 0 } satisfies Reply);
  });
  process.on('message', (request: Request) => {
    if (request === 'reset') count = connections = 0;
    if (request === 'count' || request === 'reset') process.send!({ count, connections } satisfies Reply);
    if (request === 'stop') {
      server.close(() => process.exit(0));
      server.closeAllConnections();
    }
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve();
