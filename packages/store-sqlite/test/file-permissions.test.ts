import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { silentLogger } from '@egress/core';
import { sqliteStore } from '../src/index.js';
import { queuedEvent, temporaryDirectory } from './helpers.js';

const directories: { remove: () => void }[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) directory.remove();
});

function permissions(path: string): number {
  return statSync(path).mode & 0o777;
}

describe('sqlite store: the queue file holds payloads in clear, so only its owner may read it', () => {
  test('creates the queue file and its -wal and -shm files 0600, and a directory it creates 0700', async () => {
    const directory = temporaryDirectory();
    directories.push(directory);
    const path = join(directory.path, 'nested', 'queue', 'egress.db');
    const store = sqliteStore({ path });
    await store.open({ logger: silentLogger });
    try {
      await store.enqueue([queuedEvent(1)]);
      expect(permissions(path)).toBe(0o600);
      for (const companion of [`${path}-wal`, `${path}-shm`]) {
        expect(existsSync(companion)).toBe(true);
        expect(permissions(companion)).toBe(0o600);
      }
      expect(permissions(join(directory.path, 'nested', 'queue'))).toBe(0o700);
      expect(permissions(join(directory.path, 'nested'))).toBe(0o700);
    } finally {
      await store.close();
    }
  });
});
