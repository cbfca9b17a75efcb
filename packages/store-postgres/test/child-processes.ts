import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const rootTsconfig = resolve(here, '..', '..', '..', 'tsconfig.json');

/** Starts `fixtures/<fixture>` in a process of its own, with its options as JSON in argv[2] and an IPC channel. */
export function startFixture(fixture: string, options: Record<string, unknown>): ChildProcess {
  return fork(join(here, 'fixtures', fixture), [JSON.stringify(options)], {
    execArgv: ['--import', tsxLoader],
    env: { ...process.env, TSX_TSCONFIG_PATH: rootTsconfig },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** Resolves at the child's next message of this type; rejects if it exits first or stays silent. */
export function nextMessage(child: ChildProcess, type: string, timeout = 60_000): Promise<void> {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`no "${type}" message from the child within ${timeout} ms`)), timeout);
    const onMessage = (message: { type?: string }) => {
      if (message.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      done();
    };
    child.on('message', onMessage);
    child.once('exit', (code) => fail(new Error(`child exited with ${code} before "${type}"`)));
  });
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => child.once('exit', () => done()));
}

/** Polls `condition` until it holds; fails naming `what` after `timeout` milliseconds. */
export async function until(condition: () => boolean | Promise<boolean>, timeout: number, what: string): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeout} ms`);
    await new Promise((done) => setTimeout(done, 25));
  }
}
