import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { postgresUrl, query } from '../postgres-test-schema.js';
import { TcpProxy } from './tcp-proxy.js';

const here = dirname(fileURLToPath(import.meta.url));
const script = join(here, 'fixtures', 'fault-process.ts');
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const rootTsconfig = resolve(here, '..', '..', '..', '..', 'tsconfig.json');

export interface Delivery {
  worker: string;
  batchId: string;
  events: { id: string; n: number }[];
  /** The sink answered 200 and the response went out whole. */
  completed: boolean;
}

/** The HTTP sink the workers deliver to: it records every request. */
export async function startSink(): Promise<{ url: string; deliveries: Delivery[]; delivered(): Set<number>; close(): Promise<void> }> {
  const deliveries: Delivery[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Omit<Delivery, 'completed'>;
      const delivery: Delivery = { ...body, completed: false };
      deliveries.push(delivery);
      response.on('close', () => (delivery.completed = response.writableFinished));
      response.end('ok');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    deliveries,
    delivered: () => new Set(deliveries.filter((delivery) => delivery.completed).flatMap((delivery) => delivery.events.map((event) => event.n))),
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/**
 * Events that reached the sink more than once although no delivery of theirs was cut short: each
 * repeat must be the same batch (same batch id) delivered again after its settlement could not be
 * written, which a sink deduplicating by batch or event id stores once. Returns what breaks that.
 */
export function unexplainedDuplicates(deliveries: readonly Delivery[]): string[] {
  const batchesByEvent = new Map<number, Set<string>>();
  for (const delivery of deliveries) {
    for (const event of delivery.events) batchesByEvent.set(event.n, (batchesByEvent.get(event.n) ?? new Set()).add(delivery.batchId));
  }
  return [...batchesByEvent].filter(([, batches]) => batches.size > 1).map(([n, batches]) => `event ${n} in batches ${[...batches].join(', ')}`);
}

export interface FaultProcess {
  readonly child: ChildProcess;
  /** Producer: numbers whose send did not throw or whose run resolved. */
  readonly accepted: Set<number>;
  next(type: string, timeout?: number): Promise<Record<string, unknown>>;
  alive(): boolean;
  exited(): Promise<number | null>;
}

export function startProcess(options: Record<string, unknown>): FaultProcess {
  const child = fork(script, [JSON.stringify(options)], {
    execArgv: ['--import', tsxLoader],
    env: { ...process.env, TSX_TSCONFIG_PATH: rootTsconfig },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const accepted = new Set<number>();
  child.on('message', (message: { type?: string; numbers?: number[] }) => {
    if (message.type === 'accepted') for (const n of message.numbers!) accepted.add(n);
  });
  child.on('error', () => undefined);
  return {
    child,
    accepted,
    alive: () => child.exitCode === null && child.signalCode === null,
    next: (type, timeout = 60_000) =>
      new Promise((done, fail) => {
        const timer = setTimeout(() => fail(new Error(`no "${type}" message from ${String(options.name)} within ${timeout} ms`)), timeout);
        const onMessage = (message: Record<string, unknown>) => {
          if (message.type !== type) return;
          clearTimeout(timer);
          child.off('message', onMessage);
          done(message);
        };
        child.on('message', onMessage);
        child.once('exit', (code, signal) => fail(new Error(`${String(options.name)} exited (${code ?? signal}) before "${type}"`)));
      }),
    exited: () =>
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve(child.exitCode)
        : new Promise((done) => child.once('exit', (code) => done(code))),
  };
}

export async function until(condition: () => boolean | Promise<boolean>, timeout: number, what: string): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeout} ms`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** A proxy in front of the test database, and a URL through it whose connections carry a name of this test's own. */
export async function proxiedDatabase(): Promise<{ proxy: TcpProxy; url: string; applicationName: string }> {
  const target = new URL(postgresUrl!);
  const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  const applicationName = `egress_fault_${randomBytes(5).toString('hex')}`;
  const url = new URL(await proxy.start(postgresUrl!));
  url.searchParams.set('application_name', applicationName);
  return { proxy, url: url.toString(), applicationName };
}

/** Ends the server side of every connection named `applicationName` (only this test's own); returns how many. */
export async function terminateBackends(applicationName: string): Promise<number> {
  const rows = await query<{ terminated: boolean }>('SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()', [
    applicationName,
  ]);
  return rows.filter((row) => row.terminated).length;
}

export interface LoadScenario {
  /** Worker processes delivering to the sink. */
  readonly workers: number;
  /** Events per second from the producer process. */
  readonly rate: number;
  /** Producer: a local spool file. */
  readonly spool?: string;
  /** What happens to the database while the producer sends; resolves when it is over. */
  readonly fault: (context: { proxy: TcpProxy; applicationName: string }) => Promise<void>;
  /** Start everything while the database cannot be reached (the fault then brings it up). */
  readonly startDown?: boolean;
}

export interface LoadOutcome {
  readonly accepted: Set<number>;
  /** Sends that threw (a full commit buffer). */
  readonly sendRefused: number;
  /** Events of units of work whose run() rejected (their commit failed): not accepted. */
  readonly runRejected: number;
  readonly sent: number;
  readonly delivered: Set<number>;
  readonly deliveries: readonly Delivery[];
  /** Worker processes that were still running when the test asked them to close. */
  readonly workersAlive: number;
  /** Exit codes of the workers and of the producer after closing. */
  readonly exitCodes: (number | null)[];
}

/**
 * A producer process sending at a steady rate and worker processes delivering to a real HTTP sink,
 * all through a proxy that `fault` breaks; waits until every accepted event arrived (or times out).
 */
export async function runLoad(scenario: LoadScenario, schema: string): Promise<LoadOutcome> {
  const sink = await startSink();
  const { proxy, url, applicationName } = await proxiedDatabase();
  const processes: FaultProcess[] = [];
  try {
    if (scenario.startDown) proxy.refuse();
    const base = { connectionString: url, schema, sinkUrl: sink.url, rate: scenario.rate, first: 0 };
    const workers = Array.from({ length: scenario.workers }, (_, index) => startProcess({ ...base, role: 'worker', name: `worker-${index}` }));
    processes.push(...workers);
    const workersReady = Promise.all(workers.map((worker) => worker.next('ready')));
    if (!scenario.startDown) await workersReady;
    const producer = startProcess({ ...base, role: 'producer', name: 'producer', ...(scenario.spool ? { spool: scenario.spool } : {}) });
    processes.push(producer);
    await producer.next('ready');
    await scenario.fault({ proxy, applicationName });
    await workersReady;
    const stopped = producer.next('stopped', 60_000);
    const closed = producer.next('closed', 60_000);
    producer.child.send({ type: 'stop' });
    const report = (await stopped) as { sent: number; sendRefused: number; runRejected: number };
    await closed;
    const delivered = () => sink.delivered();
    await until(
      () => {
        const arrived = delivered();
        for (const n of producer.accepted) if (!arrived.has(n)) return false;
        return true;
      },
      60_000,
      'every accepted event arrived',
    ).catch(() => undefined);
    const workersAlive = workers.filter((worker) => worker.alive()).length;
    for (const worker of workers) if (worker.alive()) worker.child.send({ type: 'close' });
    const exitCodes = await Promise.all(processes.map((child) => child.exited()));
    return {
      accepted: producer.accepted,
      sendRefused: report.sendRefused,
      runRejected: report.runRejected,
      sent: report.sent,
      delivered: delivered(),
      deliveries: sink.deliveries,
      workersAlive,
      exitCodes,
    };
  } finally {
    for (const child of processes) if (child.alive()) child.child.kill('SIGKILL');
    await proxy.close();
    await sink.close();
  }
}

/** Accepted events that never arrived. */
export function missing(outcome: LoadOutcome): number[] {
  return [...outcome.accepted].filter((n) => !outcome.delivered.has(n)).sort((a, b) => a - b);
}
