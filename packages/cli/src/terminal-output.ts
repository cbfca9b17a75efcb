/** Where a command writes and what it can ask; the process's own streams unless a test swaps them. */
export interface CommandIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  environment: NodeJS.ProcessEnv;
  /** Applied to everything written, once a config file has named its secrets (see `openConfig`). */
  redactions?: ((text: string) => string)[];
}

/** The same streams, with every write passed through the redactions a config file registers. */
export function redactingIo(io: CommandIo): CommandIo {
  const redactions: ((text: string) => string)[] = [];
  const scrub = (text: string) => redactions.reduce((current, redact) => redact(current), text);
  return {
    ...io,
    stdout: { write: (text) => io.stdout.write(scrub(text)), isTTY: io.stdout.isTTY },
    stderr: { write: (text) => io.stderr.write(scrub(text)), isTTY: io.stderr.isTTY },
    redactions,
  };
}

export const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, environment: process.env };

/** Exit codes scripts can rely on. */
export const exitCodes = { ok: 0, failure: 1, usage: 2 } as const;

/** A command line or configuration mistake: exit code 2, message without a stack trace. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [header, ...rows.map((row) => row.map(String))];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => String(row[column] ?? '').length)));
  const numeric = header.map((_, column) => rows.length > 0 && rows.every((row) => typeof row[column] === 'number'));
  return cells
    .map((row) =>
      row
        .map((cell, column) => (numeric[column] ? String(cell).padStart(widths[column]!) : String(cell).padEnd(widths[column]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `850ms`, `12s`, `3m 05s`, `2h 10m`, `3d 4h`. */
export function formatAge(milliseconds: number): string {
  if (milliseconds < 1000) return `${Math.round(milliseconds)}ms`;
  const seconds = Math.floor(milliseconds / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, '0')}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h ${String(minutes % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/**
 * One status line that rewrites itself on a terminal, and prints at most every few seconds
 * elsewhere, so that logs of a long operation stay short.
 */
export function progressLine(stream: CommandIo['stderr'], intervalMs = 2000): { update(text: string): void; done(text?: string): void } {
  let lastPrinted = 0;
  let pending: string | undefined;
  return {
    update(text) {
      if (stream.isTTY) {
        stream.write(`\r\u001b[2K${text}`);
        return;
      }
      pending = text;
      const now = Date.now();
      if (now - lastPrinted >= intervalMs) {
        stream.write(`${text}\n`);
        lastPrinted = now;
        pending = undefined;
      }
    },
    done(text) {
      const last = text ?? pending;
      if (stream.isTTY) stream.write(`\r\u001b[2K${last === undefined ? '' : `${last}\n`}`);
      else if (last !== undefined) stream.write(`${last}\n`);
    },
  };
}

/** Asks a yes/no question on a terminal; anything but y/yes is no. */
export async function confirm(io: CommandIo, question: string): Promise<boolean> {
  io.stderr.write(`${question} [y/N] `);
  const answer = await new Promise<string>((resolve) => {
    let text = '';
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      if (text.includes('\n')) finish();
    };
    const finish = () => {
      io.stdin.off('data', onData);
      io.stdin.off('end', finish);
      io.stdin.pause?.();
      resolve(text.trim().toLowerCase());
    };
    io.stdin.on('data', onData);
    io.stdin.on('end', finish);
    io.stdin.resume?.();
  });
  return answer === 'y' || answer === 'yes';
}
