import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll } from 'vitest';
import { main } from '../src/cli.js';
import type { CommandIo } from '../src/terminal-output.js';

/**
 * A PostgreSQL schema of this test file's own, dropped after its tests: several people share the
 * test database. Call it inside the describe block that uses it.
 */
export function postgresSchemaForFile(databaseUrl: string, prefix: string): string {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  afterAll(async () => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  });
  return schema;
}

/** A config file whose PostgreSQL store (URL from EGRESS_PG_URL) feeds the audit fixture destination, writing to `auditFile`. */
export function postgresAuditConfig(file: string, schema: string, auditFile: string): void {
  writeFileSync(
    file,
    `store:\n  kind: postgres\n  connectionString: \${env:EGRESS_PG_URL}\n  schema: ${schema}\ndestinations:\n  audit:\n    module: ${auditModule}\n    file: ${auditFile}\npolicies:\n  audit:\n    batch: { maxEvents: 5, maxDelay: 10ms }\n`,
  );
}

export const repositoryRoot = resolve(import.meta.dirname, '../../..');
export const auditModule = resolve(import.meta.dirname, 'fixtures/audit-destination.ts');

/** A fresh folder holding the given files. */
export function folderWith(files: Record<string, string>): string {
  const directory = mkdtempSync(join(tmpdir(), 'egress-cli-test-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(directory, name), content);
  return directory;
}

/** Runs `egress ...` in this process with captured output. */
export async function runEgress(argv: string[], options: { environment?: NodeJS.ProcessEnv; tty?: boolean; input?: string } = {}) {
  let stdout = '';
  let stderr = '';
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean };
  stdin.isTTY = options.tty ?? false;
  if (options.input !== undefined) stdin.end(options.input);
  const io: CommandIo = {
    stdout: { write: (text: string) => (stdout += text), isTTY: false },
    stderr: { write: (text: string) => (stderr += text), isTTY: false },
    stdin,
    environment: options.environment ?? {},
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Starts the real `egress` command as a child process, from the sources (through tsx and the root tsconfig paths). */
export function spawnEgress(argv: string[], options: { cwd?: string; environment?: NodeJS.ProcessEnv } = {}): ChildProcess & { output(): { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, ['--import', tsxLoader, resolve(repositoryRoot, 'packages/cli/src/bin.ts'), ...argv], {
    cwd: options.cwd ?? repositoryRoot,
    env: { ...process.env, TSX_TSCONFIG_PATH: resolve(repositoryRoot, 'tsconfig.json'), ...options.environment },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return Object.assign(child, { output: () => ({ stdout, stderr }) });
}

export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/** Waits until `check` passes, polling; fails after `timeout` ms with the last reason. */
export async function eventually(check: () => boolean | Promise<boolean>, timeout = 20_000, describe = () => 'condition'): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A port on 127.0.0.1 that nothing listens on: taken from the system, then given back. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Opens `port` as a plain TCP relay to PostgreSQL: the database "comes up" on the address the worker was given. */
export async function relay(port: number, target: { host: string; port: number }): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
