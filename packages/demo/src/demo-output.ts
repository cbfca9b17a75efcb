/** Where the demo writes: the process's own streams, or the `egress` command's. */
export interface DemoIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean };
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

/**
 * One status line that rewrites itself on a terminal, and prints at most every few seconds
 * elsewhere, so that logs of a long operation stay short.
 */
export function progressLine(stream: DemoIo['stderr'], intervalMs = 2000): { update(text: string): void; done(text?: string): void } {
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
