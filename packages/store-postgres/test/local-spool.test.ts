import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, expect, test } from 'vitest';
import { LocalSpool } from '../src/local-spool.js';

const directory = mkdtempSync(join(tmpdir(), 'egress-spool-file-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

test('a spool left by an older release keeps its events and from then on keeps trace contexts too', async () => {
  const path = join(directory, 'version-1.db');
  // The file as version 1 of the spool wrote it, with one event waiting.
  const older = new Database(path);
  older.exec(`
    CREATE TABLE spool_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE spooled_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, destination TEXT NOT NULL, partition TEXT NOT NULL,
      payload TEXT NOT NULL, size INTEGER NOT NULL, sent_at INTEGER NOT NULL, attempts INTEGER NOT NULL);
    INSERT INTO spool_info VALUES ('format', 'egress-postgres-spool'), ('version', '1'), ('schema', 'egress');
    INSERT INTO spooled_events (id, destination, partition, payload, size, sent_at, attempts) VALUES ('old', 'sink', '', '{}', 2, 1000, 0);`);
  older.close();

  const spool = new LocalSpool(path, 'egress');
  await spool.open();
  try {
    const trace = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    spool.append([{ id: 'new', destination: 'sink', partition: '', payload: '{}', size: 2, sentAt: 2000, attempts: 0, trace }]);
    const read = spool.read(10)!;
    expect(read.events.map((event) => [event.id, event.trace])).toEqual([
      ['old', undefined],
      ['new', trace],
    ]);
  } finally {
    spool.close();
  }
  const upgraded = new Database(path, { readonly: true });
  expect(upgraded.prepare("SELECT value FROM spool_info WHERE key = 'version'").get()).toEqual({ value: '2' });
  upgraded.close();
});
