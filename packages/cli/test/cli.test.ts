import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { auditModule, folderWith, runEgress } from './helpers.js';

const commands = ['worker', 'status', 'dead list', 'dead show', 'dead retry', 'dead purge', 'validate', 'tail', 'demo'];

function auditFolder(extra = '') {
  return folderWith({ 'egress.config.yaml': `store: { kind: memory }\ndestinations:\n  audit:\n    module: ${auditModule}\n    file: ./audit.jsonl\n${extra}` });
}

describe('egress', () => {
  test.each(commands)('`egress %s --help` prints its usage, options and exit codes', async (name) => {
    const result = await runEgress([...name.split(' '), '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: egress ${name}`);
    expect(result.stdout).toContain('Exit codes: 0 success, 1 failure');
  });

  test('`egress --help` lists every command', async () => {
    const result = await runEgress(['--help']);
    expect(result.code).toBe(0);
    for (const name of commands) expect(result.stdout).toContain(`  ${name}`);
  });

  test('an unknown command or option is a usage error (exit 2)', async () => {
    expect((await runEgress(['deliver'])).code).toBe(2);
    const unknownOption = await runEgress(['status', '--colour']);
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toContain("Unknown option '--colour'");
    const partial = await runEgress(['dead', 'bury']);
    expect(partial.code).toBe(2);
    expect(partial.stderr).toContain('expected one of list, show, retry, purge, got "bury"');
  });

  test('a command without a config file says where it looked (exit 2)', async () => {
    const result = await runEgress(['status', '-c', '/nonexistent/egress.yaml']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('/nonexistent/egress.yaml  (file): file not found');
  });
});

describe('egress validate', () => {
  test('accepts a valid file (exit 0)', async () => {
    const folder = auditFolder();
    const result = await runEgress(['validate', '-c', join(folder, 'egress.config.yaml')]);
    expect(result.stdout).toContain('is valid: audit with the memory store');
    expect(result.code).toBe(0);
  });

  test('lists every problem with file, line and path, as text and as JSON (exit 2)', async () => {
    const folder = auditFolder('    colour: blue\n    password: ${env:AUDIT_PASSWORD}\npolicies:\n  audit: { batch: { maxEvents: 0 } }\n  mail: {}\n');
    const file = join(folder, 'egress.config.yaml');
    const text = await runEgress(['validate', '-c', file], { environment: { AUDIT_PASSWORD: 's3cret-value' } });
    expect(text.code).toBe(2);
    expect(text.stdout).toContain('3 problems in the configuration');
    expect(text.stdout).toMatch(/egress\.config\.yaml:6 +destinations\.audit\.colour: \[audit\] option "colour": Unknown option/);
    expect(text.stdout).toMatch(/egress\.config\.yaml:9 +policies\.audit\.batch\.maxEvents: expected a number greater than 0, got 0/);
    expect(text.stdout).toMatch(/egress\.config\.yaml:10 +policies\.mail: no destination named "mail"/);
    expect(text.stdout).not.toContain('s3cret-value');

    const json = await runEgress(['validate', '-c', file, '--json'], { environment: { AUDIT_PASSWORD: 's3cret-value' } });
    const report = JSON.parse(json.stdout) as { valid: boolean; problems: { path: string; line: number }[] };
    expect(report.valid).toBe(false);
    expect(report.problems.map((problem) => problem.path)).toEqual(['destinations.audit.colour', 'policies.audit.batch.maxEvents', 'policies.mail']);
  });
});

describe('egress status and dead', () => {
  test('status shows every configured destination, as a table and as JSON', async () => {
    const file = join(auditFolder(), 'egress.config.yaml');
    const table = await runEgress(['status', '-c', file]);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^DESTINATION +PARTITION +WAITING +IN FLIGHT +DELIVERED +FAILED +DEAD +OLDEST$/);
    expect(table.stdout).toMatch(/^audit +- +0 +0 +0 +0 +0 +-$/m);
    const json = await runEgress(['status', '-c', file, '--json']);
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ destination: 'audit', waiting: 0, dead: 0, partitions: [] })]);
  });

  test('dead retry and purge need ids or --all', async () => {
    const file = join(auditFolder(), 'egress.config.yaml');
    const result = await runEgress(['dead', 'retry', '-c', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('expected dead letter ids, or --all');
    expect((await runEgress(['dead', 'purge', '-c', file, '--all', 'some-id'])).code).toBe(2);
  });

  test('dead list on an empty queue says so', async () => {
    const file = join(auditFolder(), 'egress.config.yaml');
    const result = await runEgress(['dead', 'list', '-c', file]);
    expect(result).toMatchObject({ code: 0, stdout: 'No dead letters.\n' });
  });
});
