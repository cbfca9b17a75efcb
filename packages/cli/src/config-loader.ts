import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  EgressConfigurationError,
  assertDestination,
  checkDeadLetterRoutes,
  defineDestination,
  memoryStore,
  parseSize,
  resolvePolicy,
  type AlertRule,
  type AnyDestination,
  type Destination,
  type DestinationInput,
  type Duration,
  type Logger,
  type PolicyOptions,
  type ResolvedPolicy,
  type Size,
  type Store,
} from '@egress/core';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { configFileSchema, type EgressConfigFile } from './config-schema.js';
import { redactSecrets, substituteEnvironment } from './environment-references.js';
import { importOptional } from './optional-import.js';

/** What a config file turns into: the options `createEgress` takes. */
export interface EgressConfig<Destinations extends readonly AnyDestination[] = AnyDestination[]> {
  store: Store;
  destinations: Destinations;
  policies: Record<string, PolicyOptions>;
  /** Bounds the events accepted and not yet committed; present when the file sets it. */
  commitBuffer?: { maxEvents?: number; maxBytes?: Size };
  /** How the store is opened when its database is unreachable; present when the file sets it. */
  startup?: 'retry' | 'fail-fast';
  /** Alert rules; present when the file sets them. */
  alerts?: AlertRule[];
}

/** A destination factory as the adapters export them (`http`, `s3`, ...). */
export type DestinationFactory = (options: never) => AnyDestination | Promise<AnyDestination>;

/**
 * The destinations of a config file, typed from the factories given to `loadConfig` by name:
 * `{ hooks: typeof http }` makes `send.hooks` take what `$send.http` takes.
 */
export type DestinationsOf<Factories extends Record<string, DestinationFactory>> = Array<
  { [Name in keyof Factories & string]: Destination<Name, DestinationInput<Awaited<ReturnType<Factories[Name]>>>, unknown> }[keyof Factories & string]
>;

export interface LoadConfigOptions {
  /** Where `${env:NAME}` references are read (default `process.env`). */
  environment?: NodeJS.ProcessEnv;
}

/** One thing wrong (or worth a warning) in a config file. */
export interface ConfigProblem {
  /** Dotted path of the bad value, e.g. `policies.s3.batch.maxBytes`; empty for the file itself. */
  path: string;
  /** What was expected, in words. Never holds a value read from the environment. */
  message: string;
  /** 1-based line in the file, when known. */
  line?: number;
}

/** A destination that serves subscribers (SSE) and the address `egress worker` serves it on. */
export interface ConfigListener {
  destination: string;
  port: number;
  host: string;
}

/** Where `egress worker` serves its metrics and health endpoints, from the file's `metrics`. */
export interface ConfigMetrics {
  listen: string;
  partitionLimit?: number;
  statsMaxAge?: Duration;
}

export interface ConfigCheck {
  /** The file as given, relative to the working directory when inside it. */
  file: string;
  /** Every problem found; empty when the file is valid. */
  problems: ConfigProblem[];
  /** Values accepted but changed (e.g. a batch size clamped to the adapter's limit). */
  warnings: ConfigProblem[];
  /** Present when there are no problems. */
  config?: EgressConfig;
  /** Destinations with `listen`: the worker serves them at these addresses. */
  listeners: ConfigListener[];
  /** The file's `metrics`, when it has them. */
  metrics?: ConfigMetrics;
  /** The file's `tracing: true`: `egress worker` traces its deliveries. */
  tracing?: boolean;
  /** Masks the values this file read from the environment in any text, before it is shown. */
  redact(text: string): string;
}

/** Where `egress` looks when no `-c` is given, in this order. */
export const defaultConfigFiles = ['egress.config.yaml', 'egress.config.yml', 'egress.config.json', 'egress.config.mjs', 'egress.config.js'];

/** The store used when the file names none: durable, next to the config file. */
const defaultStore = { kind: 'sqlite', path: '.egress/queue.db' } as const;

/** Store kinds and the package and factory that build them; `memory` lives in core. */
const storePackages: Record<string, { specifier: string; factory: string }> = {
  sqlite: { specifier: '@egress/store-sqlite', factory: 'sqliteStore' },
  postgres: { specifier: '@egress/store-postgres', factory: 'postgresStore' },
};

/**
 * Reads a config file (`.yaml`, `.yml`, `.json`, or `.js`/`.mjs` exporting the object as default)
 * and returns the options for `createEgress`. Throws one `EgressConfigurationError` that lists every
 * problem, each with the file, the path of the bad value and what was expected.
 */
export async function loadConfig(file: string, options?: LoadConfigOptions): Promise<EgressConfig>;
/**
 * With `destinations`, the factories of the destinations the file defines, by name, `send` is typed
 * from them, and the file must define exactly those names (checked when it is loaded).
 */
export async function loadConfig<const Factories extends Record<string, DestinationFactory>>(
  file: string,
  options: LoadConfigOptions & { destinations: Factories },
): Promise<EgressConfig<DestinationsOf<Factories>>>;
export async function loadConfig(file: string, options: LoadConfigOptions & { destinations?: Record<string, DestinationFactory> } = {}): Promise<EgressConfig> {
  const check = await checkConfig(file, options);
  if (check.config === undefined) throw new EgressConfigurationError(formatProblems(check), check.file);
  if (options.destinations !== undefined) {
    const expected = Object.keys(options.destinations).sort();
    const defined = check.config.destinations.map((destination) => destination.name).sort();
    if (expected.join() !== defined.join()) {
      await check.config.store.close().catch(() => undefined);
      throw new EgressConfigurationError(`the file defines the destinations ${defined.join(', ') || 'none'}, but loadConfig was told to expect ${expected.join(', ') || 'none'}`, `${check.file} destinations`);
    }
  }
  return check.config;
}

/** What a check covers: everything, or only the store (the destinations answer to their names but are not built). */
export type ConfigScope = 'everything' | 'store';

/** Like `loadConfig`, but returns every problem instead of throwing (what `egress validate` prints). */
export async function checkConfig(
  file: string,
  /** `spool: false` builds a PostgreSQL store without its spool, for commands that only read the queue while a producer holds the spool. */
  options: { environment?: NodeJS.ProcessEnv; scope?: ConfigScope; spool?: boolean } = {},
): Promise<ConfigCheck> {
  // `egress status` reads the queue only: a destination's secrets need not be set for it.
  const storeOnly = options.scope === 'store';
  const absolute = resolve(file);
  const shown = relative(process.cwd(), absolute).startsWith('..') ? absolute : relative(process.cwd(), absolute);
  const secrets = new Set<string>();
  const check: ConfigCheck = { file: shown, problems: [], warnings: [], listeners: [], redact: (text) => redactSecrets(text, secrets) };
  const source = await readSource(absolute, check);
  if (source === undefined) return check;

  const substitution = substituteEnvironment(source.value, options.environment ?? process.env);
  for (const secret of substitution.secrets) secrets.add(secret);
  const locate = (path: readonly (string | number)[]) => source.line(path);
  const report = (into: ConfigProblem[], path: readonly (string | number)[], message: string) => {
    const line = locate(path);
    into.push({ path: formatPath(path), message: redactSecrets(message, secrets), ...(line === undefined ? {} : { line }) });
  };
  for (const { path, variable } of substitution.missing) {
    if (storeOnly && path[0] !== 'store') continue;
    report(check.problems, path, `environment variable ${variable} is not set (referenced as \${env:${variable}})`);
  }

  const parsed = configFileSchema.safeParse(substitution.value);
  // Entries with a problem of their own are not built, so that one mistake is reported once.
  const badPaths = new Set<string>(substitution.missing.map(({ path }) => path.slice(0, 2).join('.')));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path as (string | number)[];
      if (storeOnly && path[0] === 'destinations' && path.length > 2) continue;
      badPaths.add(path[0] === 'store' ? 'store' : path.slice(0, 2).join('.'));
      if (issue.code === 'unrecognized_keys') {
        const allowed = allowedKeys(path, substitution.value);
        const expected = allowed === undefined ? '' : allowed.length === 1 ? ` (expected ${allowed[0]})` : ` (expected one of ${allowed.join(', ')})`;
        for (const key of issue.keys) report(check.problems, [...path, key], `unknown key${expected}`);
      } else {
        report(check.problems, path, describeIssue(issue, valueAt(substitution.value, path)));
      }
    }
  }
  // Each destination, store and policy that is well-formed is still built, so one run reports
  // the adapters' own complaints too, not only the shape problems.
  const raw = (typeof substitution.value === 'object' && substitution.value !== null ? substitution.value : {}) as Partial<Record<keyof EgressConfigFile, unknown>>;
  const baseDirectory = dirname(absolute);

  const destinations: AnyDestination[] = [];
  const entries = isRecord(raw.destinations) ? Object.entries(raw.destinations) : [];
  for (const [name, entry] of entries) {
    if (storeOnly) {
      // A name the schema refused is reported above; it cannot name a destination here.
      if (/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) destinations.push(bareDestination(name));
      continue;
    }
    if (badPaths.has(`destinations.${name}`) || !isRecord(entry)) continue;
    const { listen, ...options } = entry as { listen?: { port: number; host?: string } } & Record<string, unknown>;
    const destination = await buildDestination(name, options, baseDirectory, (path, message) => report(check.problems, ['destinations', name, ...path], message));
    if (destination === undefined) continue;
    destinations.push(destination);
    if (listen === undefined) continue;
    if (typeof (destination as { listen?: unknown }).listen !== 'function') report(check.problems, ['destinations', name, 'listen'], `the ${name} destination does not serve subscribers itself; remove "listen"`);
    else check.listeners.push({ destination: name, port: listen.port, host: listen.host ?? '127.0.0.1' });
  }

  const reportConfigurationError = (error: unknown, fallback: string[]) => {
    const path = EgressConfigurationError.isInstance(error) ? error.path.split('.') : fallback;
    report(check.problems, path, stripPrefix(error, EgressConfigurationError.isInstance(error) ? error.path : ''));
  };
  const policies: Record<string, PolicyOptions> = {};
  const routes = new Map(destinations.map((destination) => [destination.name, { destination, routing: undefined as ResolvedPolicy['deadLetters'] }]));
  const names = new Set(entries.map(([name]) => name));
  for (const [name, policy] of isRecord(raw.policies) ? Object.entries(raw.policies) : []) {
    if (!names.has(name)) {
      report(check.problems, ['policies', name], `no destination named "${name}" (destinations: ${[...names].join(', ') || 'none'})`);
      continue;
    }
    if (badPaths.has(`policies.${name}`)) continue;
    policies[name] = policy as PolicyOptions;
    // A destination that could not be built still gets its policy checked, without adapter defaults.
    const destination = destinations.find((candidate) => candidate.name === name) ?? bareDestination(name);
    try {
      const resolved = resolvePolicy(destination, policy, `policies.${name}`, warningCollector((message) => check.warnings.push({ path: `policies.${name}`, message: redactSecrets(message, secrets) })));
      const route = routes.get(name);
      if (route) route.routing = resolved.deadLetters;
    } catch (error) {
      reportConfigurationError(error, ['policies', name]);
    }
  }
  // Dead-letter routes name other destinations: checked once every destination is known.
  if (check.problems.length === 0) {
    try {
      checkDeadLetterRoutes(routes);
    } catch (error) {
      reportConfigurationError(error, ['policies']);
    }
  }

  const alerts = Array.isArray(raw.alerts) ? (raw.alerts as AlertRule[]) : undefined;
  alerts?.forEach((rule, index) => {
    if (badPaths.has(`alerts.${index}`)) return;
    const named: { name: string; path: (string | number)[] }[] = (rule.destinations ?? []).map((name, position) => ({ name, path: ['alerts', index, 'destinations', position] }));
    if (typeof rule.send === 'object') named.push({ name: rule.send.destination, path: ['alerts', index, 'send', 'destination'] });
    for (const { name, path } of named) {
      if (!names.has(name)) report(check.problems, path, `no destination named "${name}" (destinations: ${[...names].join(', ') || 'none'})`);
    }
  });

  const store = badPaths.has('store') ? undefined : await buildStore(raw.store ?? defaultStore, baseDirectory, (path, message) => report(check.problems, ['store', ...path], message), options.spool !== false);

  // The schema takes '0KiB' as a size; the engine would refuse it only when it is created.
  const commitBuffer = badPaths.has('commitBuffer.maxBytes') ? undefined : (raw.commitBuffer as EgressConfig['commitBuffer']);
  if (commitBuffer?.maxBytes !== undefined && Number(parseSize(commitBuffer.maxBytes)) < 1) report(check.problems, ['commitBuffer', 'maxBytes'], 'expected at least 1 byte');

  if (check.problems.length === 0 && store !== undefined) {
    const startup = raw.startup as EgressConfig['startup'];
    check.config = {
      store,
      destinations,
      policies,
      ...(commitBuffer === undefined ? {} : { commitBuffer }),
      ...(startup === undefined ? {} : { startup }),
      ...(alerts === undefined ? {} : { alerts }),
    };
    if (isRecord(raw.metrics)) check.metrics = raw.metrics as unknown as ConfigMetrics;
    if (raw.tracing === true) check.tracing = true;
  } else await store?.close().catch(() => undefined);
  // Shape problems are found before the adapters' own: a reader goes down the file, so do they.
  check.problems.sort((first, second) => (first.line ?? 0) - (second.line ?? 0));
  return check;
}

/** Every problem of a check, one per line, for messages and `egress validate`. */
export function formatProblems(check: Pick<ConfigCheck, 'file' | 'problems'>): string {
  const lines = check.problems.map((problem) => `  ${check.file}${problem.line === undefined ? '' : `:${problem.line}`}  ${problem.path || '(file)'}: ${problem.message}`);
  return `${check.problems.length} problem${check.problems.length === 1 ? '' : 's'} in the configuration\n${lines.join('\n')}`;
}

/** Finds the config file: the one given, else the first of `defaultConfigFiles` in the working directory. */
export function findConfigFile(given: string | undefined): string | undefined {
  if (given !== undefined) return given;
  return defaultConfigFiles.find((candidate) => existsSync(candidate));
}

interface Source {
  value: unknown;
  line(path: readonly (string | number)[]): number | undefined;
}

async function readSource(absolute: string, check: ConfigCheck): Promise<Source | undefined> {
  if (!existsSync(absolute)) {
    check.problems.push({ path: '', message: 'file not found' });
    return undefined;
  }
  const extension = extname(absolute);
  if (extension === '.js' || extension === '.mjs') {
    try {
      const loaded = (await import(pathToFileURL(absolute).href)) as { default?: unknown };
      return { value: loaded.default, line: () => undefined };
    } catch (error) {
      check.problems.push({ path: '', message: `could not be imported: ${stripPrefix(error, '')}` });
      return undefined;
    }
  }
  if (!['.yaml', '.yml', '.json'].includes(extension)) {
    check.problems.push({ path: '', message: `expected a .yaml, .yml, .json, .js or .mjs file, got "${extension}"` });
    return undefined;
  }
  const text = readFileSync(absolute, 'utf8');
  const lineCounter = new LineCounter();
  // YAML 1.2 reads JSON as well, and keeps the positions that point problems at their line.
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  if (extension === '.json') {
    // The YAML parser forgives what JSON does not (a missing value, a trailing comma).
    try {
      JSON.parse(text);
    } catch (error) {
      // Node 20 says "at position N" for some errors, later versions "(line N column M)".
      const message = (error as Error).message.split('\n')[0]!;
      const position = /position (\d+)/.exec(message)?.[1];
      const line = position === undefined ? /line (\d+)/.exec(message)?.[1] : lineCounter.linePos(Number(position)).line;
      check.problems.push({ path: '', message: `not valid JSON: ${message}`, ...(line === undefined ? {} : { line: Number(line) }) });
      return undefined;
    }
  }
  const [syntaxError] = document.errors;
  if (syntaxError !== undefined) {
    // The errors after the first mostly follow from it.
    const hint = /flow-map|flow-seq/.test(syntaxError.message) ? " (a ${env:NAME} inside { } or [ ] must be quoted: '${env:NAME}')" : '';
    check.problems.push({ path: '', message: `not valid YAML: ${syntaxError.message.split('\n')[0]}${hint}`, line: lineCounter.linePos(syntaxError.pos[0]).line });
    return undefined;
  }
  return { value: document.toJS(), line: (path) => lineOf(document, lineCounter, path) };
}

function lineOf(document: Document, lineCounter: LineCounter, path: readonly (string | number)[]): number | undefined {
  // An unknown or missing key has no node of its own: fall back to its nearest parent.
  for (let length = path.length; length >= 0; length -= 1) {
    const node = document.getIn(path.slice(0, length), true) as { range?: [number, number, number] } | undefined;
    if (node?.range) return lineCounter.linePos(node.range[0]).line;
  }
  return undefined;
}

type Reporter = (path: (string | number)[], message: string) => void;

async function buildDestination(name: string, entry: Record<string, unknown>, baseDirectory: string, report: Reporter): Promise<AnyDestination | undefined> {
  const { type, module, export: exportName, ...options } = entry as { type?: string; module?: string; export?: string } & Record<string, unknown>;
  const kind = type ?? name;
  const specifier = module === undefined ? `@egress/${kind}` : moduleSpecifier(module, baseDirectory);
  const loaded = await importOptional(specifier);
  if (!loaded.ok) {
    report(module === undefined ? (type === undefined ? [] : ['type']) : ['module'], loaded.message);
    return undefined;
  }
  // A custom module may export the factory under the type's name or as its default export.
  const factoryName = exportName ?? (module !== undefined && typeof loaded.module[kind] !== 'function' ? 'default' : kind);
  const factory = loaded.module[factoryName];
  if (typeof factory !== 'function') {
    report(exportName === undefined ? (module === undefined ? ['type'] : ['module']) : ['export'], `${specifier} has no export "${factoryName}" that builds a destination`);
    return undefined;
  }
  try {
    const built: unknown = await factory(options);
    assertDestination(built);
    return built.name === name ? built : renamed(built, name);
  } catch (error) {
    // Adapters name the option as `[s3] option "bucket"`: point at that key of the entry.
    const option = EgressConfigurationError.isInstance(error) ? /option "([^"]+)"/.exec(error.path)?.[1] : undefined;
    report(option === undefined ? [] : optionPath(option), stripPrefix(error, ''));
    return undefined;
  }
}

function bareDestination(name: string): AnyDestination {
  return defineDestination({ name, input: { '~standard': { version: 1, vendor: 'egress-cli', validate: (value: unknown) => ({ value }) } }, async deliver() {} });
}

/** The same destination answering to another `$send` name (two HTTP destinations, say). */
function renamed(destination: AnyDestination, name: string): AnyDestination {
  const copy = Object.create(destination, { name: { value: name, enumerable: true } }) as AnyDestination;
  assertDestination(copy);
  return copy;
}

function moduleSpecifier(module: string, baseDirectory: string): string {
  if (module.startsWith('.') || isAbsolute(module)) return pathToFileURL(resolve(baseDirectory, module)).href;
  return module;
}

async function buildStore(entry: unknown, baseDirectory: string, report: Reporter, withSpool: boolean): Promise<Store | undefined> {
  const { kind, ...options } = entry as { kind: string } & Record<string, unknown>;
  if (!withSpool) delete options.spool;
  if (kind === 'memory') return memoryStore(options);
  const target = storePackages[kind];
  if (target === undefined) return undefined;
  // Files named in the config are found next to it, wherever the process was started.
  if (kind === 'sqlite') options.path = resolve(baseDirectory, typeof options.path === 'string' ? options.path : defaultStore.path);
  if (kind === 'postgres' && typeof options.spool === 'string') options.spool = resolve(baseDirectory, options.spool);
  if (kind === 'postgres' && isRecord(options.spool) && typeof options.spool.path === 'string') options.spool = { ...options.spool, path: resolve(baseDirectory, options.spool.path) };
  const loaded = await importOptional(target.specifier);
  if (!loaded.ok) {
    report(['kind'], loaded.message);
    return undefined;
  }
  const factory = loaded.module[target.factory];
  if (typeof factory !== 'function') {
    report(['kind'], `${target.specifier} has no export "${target.factory}"`);
    return undefined;
  }
  try {
    return (await factory(options)) as Store;
  } catch (error) {
    const option = EgressConfigurationError.isInstance(error) ? /option "([^"]+)"/.exec(error.path)?.[1] : undefined;
    report(option === undefined ? [] : optionPath(option), stripPrefix(error, ''));
    return undefined;
  }
}

/** A schema issue in the words the rest of the CLI uses, with the value that was found. */
function describeIssue(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_key':
      return issue.issues.map((inner) => describeIssue(inner, value)).join('; ');
    case 'invalid_union':
      if (issue.path.at(-1) === 'kind') return 'expected one of memory, sqlite, postgres';
      // A union the schema words itself (a duration, a size, a spool) fails as a whole when no branch takes the type.
      if (issue.message !== 'Invalid input') return `${issue.message}, got ${shown(value)}`;
      break;
    case 'invalid_value':
      return `expected ${issue.values.length === 1 ? shown(issue.values[0]) : `one of ${issue.values.map((allowed) => String(allowed)).join(', ')}`}, got ${shown(value)}`;
    case 'invalid_type':
      if (value === undefined) return `required: ${article(issue.expected)}`;
      return `expected ${article(issue.expected)}, got ${shown(value)}`;
    case 'too_small':
    case 'too_big': {
      const bound = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
      const inclusive = issue.inclusive !== false;
      if (issue.origin === 'string' && issue.code === 'too_small' && bound <= 1) return 'expected a non-empty string';
      if (issue.origin === 'array' || issue.origin === 'string') {
        const unit = issue.origin === 'array' ? 'item' : 'character';
        return `expected ${issue.code === 'too_small' ? 'at least' : 'at most'} ${bound} ${unit}${bound === 1 ? '' : 's'}, got ${Array.isArray(value) || typeof value === 'string' ? value.length : shown(value)}`;
      }
      const relation = issue.code === 'too_small' ? (inclusive ? 'at least' : 'greater than') : inclusive ? 'at most' : 'less than';
      return `expected a number ${relation} ${bound}, got ${shown(value)}`;
    }
  }
  return issue.message.replace(/^Invalid input: /, '');
}

function article(expected: string): string {
  const words: Record<string, string> = { int: 'a whole number', number: 'a number', string: 'a string', boolean: 'true or false', object: 'a mapping of keys to values', array: 'a list', record: 'a mapping of keys to values' };
  return words[expected] ?? expected;
}

function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object' && value !== null) return 'a mapping';
  return String(value);
}

function valueAt(data: unknown, path: readonly (string | number)[]): unknown {
  let value = data;
  for (const segment of path) value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[String(segment)] : undefined;
  return value;
}

/** The keys the schema allows at a path of `data`, to say what was expected beside "unknown key". */
function allowedKeys(path: readonly (string | number)[], data: unknown): string[] | undefined {
  type Definition = { type: string; shape?: Record<string, z.core.$ZodType>; valueType?: z.core.$ZodType; innerType?: z.core.$ZodType; options?: z.core.$ZodType[] };
  const definitionOf = (schema: z.core.$ZodType, value: unknown): Definition => {
    let definition = schema._zod.def as Definition;
    if (definition.type === 'optional' && definition.innerType) definition = definition.innerType._zod.def as Definition;
    if (definition.type === 'union' && definition.options) {
      // A discriminated union (the store): the branch is the one whose `kind` the value names.
      const kind = isRecord(value) ? value.kind : undefined;
      const kinds = (option: z.core.$ZodType) => ((option._zod.def as Definition).shape?.kind?._zod.def as { values?: unknown[] } | undefined)?.values ?? [];
      // Any other union with a mapping among its branches (a spool given as `{ path }`): that branch.
      const branch = definition.options.find((option) => kinds(option).includes(kind)) ?? (isRecord(value) ? definition.options.find((option) => (option._zod.def as Definition).type === 'object') : undefined);
      if (branch) definition = branch._zod.def as Definition;
    }
    return definition;
  };
  let schema: z.core.$ZodType = configFileSchema;
  let value = data;
  for (const segment of path) {
    const definition = definitionOf(schema, value);
    value = isRecord(value) ? value[String(segment)] : undefined;
    if (definition.type === 'object' && definition.shape?.[String(segment)]) schema = definition.shape[String(segment)]!;
    else if (definition.type === 'record' && definition.valueType) schema = definition.valueType;
    else return undefined;
  }
  const definition = definitionOf(schema, value);
  return definition.type === 'object' && definition.shape ? Object.keys(definition.shape) : undefined;
}

/** The message of an error without core's `[egress] <path>: ` prefix, which the problem's own path replaces. */
function stripPrefix(error: unknown, path: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const withoutBrand = message.replace(/^\[egress\] /, '');
  return path && withoutBrand.startsWith(`${path}: `) ? withoutBrand.slice(path.length + 2) : withoutBrand;
}

/** `auth.tokens[0]` → `['auth', 'tokens', 0]`, so the problem points at the option's own line. */
function optionPath(option: string): (string | number)[] {
  return [...option.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((match) => (match[2] === undefined ? match[1]! : Number(match[2])));
}

function formatPath(path: readonly (string | number)[]): string {
  return path.reduce<string>((text, segment) => (typeof segment === 'number' ? `${text}[${segment}]` : text ? `${text}.${segment}` : segment), '');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function warningCollector(collect: (message: string) => void): Logger {
  return { debug() {}, info() {}, warn: (_fields, message) => collect(message), error: (_fields, message) => collect(message) };
}
