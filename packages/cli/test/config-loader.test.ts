import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EgressConfigurationError, createEgress } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { checkConfig, loadConfig } from '../src/index.js';
import { auditModule, folderWith } from './helpers.js';

function auditConfig(extra = '') {
  return `store: { kind: memory }
destinations:
  audit:
    module: ${auditModule}
    file: ./audit.jsonl
${extra}`;
}

describe('loadConfig', () => {
  test('turns a YAML file into createEgress options that deliver to the real sink', async () => {
    const folder = folderWith({ 'egress.config.yaml': auditConfig('policies:\n  audit:\n    batch: { maxEvents: 10, maxDelay: 20ms }\n').replace('./audit.jsonl', '${env:AUDIT_FILE}') });
    const file = join(folder, 'audit.jsonl');
    const config = await loadConfig(join(folder, 'egress.config.yaml'), { environment: { AUDIT_FILE: file } });
    expect(config.store.kind).toBe('memory');
    expect(config.policies).toEqual({ audit: { batch: { maxEvents: 10, maxDelay: '20ms' } } });
    const egress = createEgress(config);
    const send = egress.send as Record<string, (input: unknown) => { settled(): Promise<unknown> }>;
    const outcome = await send.audit!({ message: 'hello', n: 1 }).settled();
    await egress.close();
    expect(outcome).toEqual({ status: 'delivered' });
    expect(readFileSync(file, 'utf8')).toContain('"message":"hello"');
  });

  test('reads JSON too, and resolves module paths against the config file', async () => {
    const folder = folderWith({
      'audit.ts': `export { audit as default } from ${JSON.stringify(auditModule)};\n`,
      'egress.config.json': JSON.stringify({ store: { kind: 'memory' }, destinations: { log: { module: './audit.ts', file: 'x.jsonl' } } }),
    });
    const config = await loadConfig(join(folder, 'egress.config.json'));
    expect(config.destinations.map((destination) => destination.name)).toEqual(['log']);
  });

  test('registers one adapter twice under two names', async () => {
    const folder = folderWith({ 'egress.config.yaml': `store: { kind: memory }\ndestinations:\n  orders: { module: ${auditModule}, type: audit, file: a }\n  refunds: { module: ${auditModule}, type: audit, file: b }\n` });
    const config = await loadConfig(join(folder, 'egress.config.yaml'));
    expect(config.destinations.map((destination) => destination.name)).toEqual(['orders', 'refunds']);
    const egress = createEgress(config);
    expect(Object.keys(egress.send)).toEqual(['orders', 'refunds']);
    await egress.close();
  });

  test('throws one EgressConfigurationError naming the file, each bad path and what was expected', async () => {
    const folder = folderWith({ 'bad.yaml': 'destinations:\n  audit:\n    module: ' + auditModule + '\n    file: out\n    colour: blue\nstores: {}\n' });
    const error = await loadConfig(join(folder, 'bad.yaml')).catch((caught: unknown) => caught);
    expect(EgressConfigurationError.isInstance(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain('bad.yaml');
    expect(message).toMatch(/bad\.yaml:6 +stores: unknown key \(expected one of \$schema, store, commitBuffer, startup, metrics, tracing, destinations, policies, alerts\)/);
    expect(message).toMatch(/bad\.yaml:5 +destinations\.audit\.colour: \[audit\] option "colour": Unknown option/);
  });
});

describe('checkConfig reports every problem', () => {
  test('shape, environment, adapter, policy and reference problems in one pass, with lines', async () => {
    const folder = folderWith({
      'egress.config.yaml': `store: { kind: memory }
destinations:
  log:
    module: ${auditModule}
    type: audit
    file: out.jsonl
    colour: blue
  mail: { type: nosuchadapter }
  bad-name: {}
  secret:
    module: ${auditModule}
    type: audit
    file: \${env:MISSING_FILE}
policies:
  log:
    retry: { initalDelay: 5 }
  mail:
    rateLimit: { per: 1s }
  nope: {}
`,
    });
    const check = await checkConfig(join(folder, 'egress.config.yaml'), { environment: {} });
    expect(check.config).toBeUndefined();
    expect(check.problems).toHaveLength(7);
    expect(check.problems).toEqual(
      expect.arrayContaining([
        { path: 'destinations.log.colour', message: '[audit] option "colour": Unknown option', line: 7 },
        { path: 'destinations.mail.type', message: 'package @egress/nosuchadapter is not installed (npm install @egress/nosuchadapter)', line: 8 },
        { path: 'destinations.bad-name', message: 'expected a name of letters, digits and underscore, starting with a letter', line: 9 },
        { path: 'destinations.secret.file', message: 'environment variable MISSING_FILE is not set (referenced as ${env:MISSING_FILE})', line: 13 },
        { path: 'policies.log.retry.initalDelay', message: 'unknown key (expected one of maxAttempts, initialDelay, maxDelay, maxAge)', line: 16 },
        { path: 'policies.mail.rateLimit.per', message: '"per" needs "events" or "requests" beside it', line: 18 },
        { path: 'policies.nope', message: 'no destination named "nope" (destinations: log, mail, bad-name, secret)', line: 19 },
      ]),
    );
  });

  test('never shows a value that came from the environment, even when an adapter echoes it', async () => {
    const folder = folderWith({ 'egress.config.yaml': auditConfig('    strict: ${env:AUDIT_STRICT}\n') });
    const check = await checkConfig(join(folder, 'egress.config.yaml'), { environment: { AUDIT_STRICT: 'hunter2-secret' } });
    expect(check.problems).toEqual([{ path: 'destinations.audit.strict', message: '[audit] option "strict": expected true or false, got "[redacted]"', line: 6 }]);
    expect(JSON.stringify(check)).not.toContain('hunter2-secret');
  });

  test('warns about a policy the adapter clamps to its hard limit', async () => {
    const folder = folderWith({ 'egress.config.yaml': auditConfig('policies:\n  audit:\n    batch: { maxEvents: 500 }\n') });
    const check = await checkConfig(join(folder, 'egress.config.yaml'));
    expect(check.problems).toEqual([]);
    expect(check.warnings).toEqual([{ path: 'policies.audit', message: 'policies.audit.batch.maxEvents is above what audit accepts; clamped to 100' }]);
  });

  test('checks sizes, durations and the store kind against the schema', async () => {
    const folder = folderWith({ 'egress.config.yaml': auditConfig('policies:\n  audit:\n    batch: { maxBytes: lots, maxDelay: 1 week }\n').replace('kind: memory', 'kind: redis') });
    const check = await checkConfig(join(folder, 'egress.config.yaml'));
    expect(check.problems.map((problem) => `${problem.path}: ${problem.message}`)).toEqual([
      'store.kind: expected one of memory, sqlite, postgres',
      "policies.audit.batch.maxBytes: expected a size like '512KiB', '8MiB', '10MB'",
      "policies.audit.batch.maxDelay: expected a duration like '500ms', '60s', '5m', '2h'",
    ]);
  });

  test('refuses JSON that only YAML would forgive', async () => {
    const folder = folderWith({ 'broken.json': '{\n  "destinations": {\n    "audit": { "file": }\n  }\n}\n' });
    const check = await checkConfig(join(folder, 'broken.json'));
    expect(check.problems).toHaveLength(1);
    expect(check.problems[0]).toMatchObject({ path: '', message: expect.stringMatching(/^not valid JSON: Unexpected token/) });
  });

  test('says when the file does not exist', async () => {
    const check = await checkConfig('/nonexistent/egress.config.yaml');
    expect(check.problems).toEqual([{ path: '', message: 'file not found' }]);
    expect(existsSync('/nonexistent')).toBe(false);
  });
});

describe('adapter option paths', () => {
  test('an option path with list positions points at the line of that item', async () => {
    const folder = folderWith({
      'audit.ts': `import { EgressConfigurationError } from '@egress/core';\nexport function audit() { throw new EgressConfigurationError('expected a token of at least 16 characters', '[audit] option "auth.tokens[1]"'); }\n`,
      'egress.config.yaml': 'store: { kind: memory }\ndestinations:\n  audit:\n    module: ./audit.ts\n    auth:\n      tokens:\n        - a-long-enough-token\n        - short\n',
    });
    const check = await checkConfig(join(folder, 'egress.config.yaml'));
    expect(check.problems).toEqual([{ path: 'destinations.audit.auth.tokens[1]', message: '[audit] option "auth.tokens[1]": expected a token of at least 16 characters', line: 8 }]);
  });
});

describe('YAML syntax', () => {
  test('reports the first syntax error with its line, and how to quote a reference inside { }', async () => {
    const folder = folderWith({ 'egress.config.yaml': `store: { kind: memory }\ndestinations:\n  audit: { module: ${auditModule}, file: \${env:AUDIT_FILE} }\n` });
    const check = await checkConfig(join(folder, 'egress.config.yaml'), { environment: { AUDIT_FILE: 'x' } });
    expect(check.problems).toHaveLength(1);
    expect(check.problems[0]).toMatchObject({ path: '', line: 3, message: expect.stringContaining("must be quoted: '${env:NAME}'") });
  });
});
