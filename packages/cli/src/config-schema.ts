import { z } from 'zod';

/**
 * The shape of `egress.config.yaml` / `.json`, defined once: `loadConfig` validates with it and the
 * published `schema.json` is generated from it, so editors and the loader never disagree.
 *
 * Options of each destination are checked by its adapter when it is constructed (the adapter owns
 * them), so a destination entry here only fixes the keys the loader itself reads.
 */

const destinationNamePattern = /^[A-Za-z][A-Za-z0-9_]*$/;
const durationPattern = /^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)\s*$/;
const sizePattern = /^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)\s*$/;

/** Destination types that map to an adapter package of this project: `http` → `@egress/http`. */
export const builtInDestinationTypes = ['http', 'email', 's3', 'sql', 'sse'] as const;

const duration = z
  .union([z.number().nonnegative(), z.string().regex(durationPattern, "expected a duration like '500ms', '60s', '5m', '2h'")], {
    error: "expected a duration: milliseconds, or a string like '500ms', '60s', '5m', '2h'",
  })
  .describe("Milliseconds, or a string such as '500ms', '60s', '5m', '2h', '1d'.");

const size = z
  .union([z.number().int().positive(), z.string().regex(sizePattern, "expected a size like '512KiB', '8MiB', '10MB'")], {
    error: "expected a size: bytes, or a string like '512KiB', '8MiB', '10MB'",
  })
  .describe("Bytes, or a string such as '512KiB', '8MiB', '10MB'.");

const positiveInteger = z.number().int().positive();

export const batchPolicySchema = z
  .strictObject({
    maxEvents: positiveInteger.optional().describe('Close the batch when it holds this many events.'),
    maxBytes: size.optional().describe('Close the batch before its encoded size passes this.'),
    maxDelay: duration.optional().describe('Close the batch when its oldest event has waited this long.'),
    partitionBy: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe("Field path(s) of the payload whose value separates batches, e.g. 'customer.id'."),
  })
  .describe('When a batch is closed and handed to the destination.');

export const retryPolicySchema = z
  .strictObject({
    maxAttempts: positiveInteger.optional().describe('Attempts in all, the first included; then the event is dead-lettered.'),
    initialDelay: duration.optional().describe('Smallest wait before a retry.'),
    maxDelay: duration.optional().describe("Largest wait before a retry (a sink's Retry-After may ask for more)."),
    maxAge: duration.optional().describe('An event older than this is dead-lettered instead of retried.'),
  })
  .describe('What happens after a failed delivery.');

export const circuitPolicySchema = z
  .strictObject({
    failures: positiveInteger.optional().describe('Failed deliveries in a row that pause a partition (default 5); also the fewest deliveries failureRatio judges.'),
    failureRatio: z.number().gt(0).max(1).optional().describe('Also pause when at least this share of the deliveries within window failed.'),
    window: duration.optional().describe('How far back failureRatio looks (default 1 minute).'),
    probeInterval: duration.optional().describe('Wait between probes of a paused partition (default 30 s).'),
    disableAfter: z
      .union([duration, z.strictObject({ failures: positiveInteger.describe('Failed deliveries in a row, probes included.') })], {
        error: "expected a duration like '5d', or { failures: 100 }",
      })
      .optional()
      .describe("Disable a paused partition once it has failed this long ('5d') or this many deliveries in a row ({ failures: 100 }); `egress enable` puts it back."),
  })
  .describe('Circuit breaking per partition: pause a partition that keeps failing and probe it one delivery at a time.');

export const alertRuleSchema = z
  .strictObject({
    on: z
      .union([z.enum(['dead', 'paused', 'disabled']), z.strictObject({ oldestWaiting: duration.describe('Alert when an event has waited longer than this.') })], {
        error: "expected 'dead', 'paused', 'disabled' or { oldestWaiting: '10m' }",
      })
      .describe('What to watch for.'),
    destinations: z.array(z.string().min(1)).optional().describe('Only about these destinations (default: all).'),
    send: z
      .strictObject({
        destination: z.string().min(1).describe('The registered destination the alert goes through (an email, a chat webhook).'),
        input: z.unknown().optional().describe("Its send input; '{{summary}}', '{{reason}}', '{{destination}}', '{{partitions}}', '{{count}}', '{{kind}}' in strings are filled in, and a string '{{alert}}' becomes the whole alert."),
      })
      .describe('Where the alert goes.'),
    every: duration.optional().describe("At most one alert per group this often (default '15m'); what happens meanwhile is summed into the next."),
    group: z.boolean().optional().describe('true (default): one group per destination; false: one per destination and partition.'),
  })
  .describe('An alert rule.');

export const policySchema = z
  .strictObject({
    batch: batchPolicySchema.optional(),
    retry: retryPolicySchema.optional(),
    concurrency: z
      .union(
        [
          positiveInteger,
          z.literal('adaptive'),
          z.strictObject({
            adaptive: z
              .strictObject({
                initial: positiveInteger.optional().describe('The limit each partition starts with (default 1).'),
                max: positiveInteger.optional().describe('Most batches in flight for the destination, all partitions together (default 64).'),
                decrease: z.number().gt(0).lt(1).optional().describe('Factor applied to a limit when the receiver pushes back or slows down (default 0.9).'),
                rttSmoothing: z.number().gt(0).max(1).optional().describe('Weight of the newest round-trip time in the moving average (default 0.4).'),
                rttDeviationScale: z.number().min(0).optional().describe('Mean deviations above the average round-trip time that still count as steady (default 2.5).'),
              })
              .describe('Adaptive concurrency settings.'),
          }),
        ],
        { error: 'expected a whole number of at least 1, adaptive or { adaptive: { initial, max, decrease, rttSmoothing, rttDeviationScale } }' },
      )
      .optional()
      .describe("Largest number of batches being delivered at once; or 'adaptive' (or { adaptive: {...} }) for a limit per partition that follows what the receiver can take."),
    rateLimit: z
      .strictObject({
        events: positiveInteger.optional().describe('Events delivered per interval.'),
        requests: positiveInteger.optional().describe('Batches (requests) delivered per interval.'),
        per: duration.optional().describe('The interval; one second when not given.'),
      })
      .optional()
      .describe('Ceiling on events or requests per interval.'),
    ordering: z.enum(['fifo', 'none']).optional().describe("'fifo' keeps each partition's order across retries (one batch in flight per partition)."),
    timeout: duration.optional().describe('How long one delivery may take before it is aborted and retried.'),
    deadLetters: z
      .strictObject({
        routeTo: z.string().min(1).describe('The destination that also receives each dead letter, redacted (not this one, and not one that routes its own).'),
        fields: z.record(z.string(), z.unknown()).optional().describe("Fixed fields of that destination's input, e.g. { url } for http."),
        recordField: z.string().min(1).optional().describe("The input field that holds the dead letter when fields are given (default 'deadLetter'), e.g. 'data' for http."),
      })
      .optional()
      .describe('Also send each dead letter of this destination to another destination, through the queue.'),
    circuit: z.union([circuitPolicySchema, z.literal(false)]).optional(),
  })
  .describe('How one destination is batched, retried, paced and ordered.');

export const storeSchema = z
  .discriminatedUnion('kind', [
    z
      .strictObject({
        kind: z.literal('memory').describe('In this process only: for trials; lost when the process ends.'),
        maxEvents: positiveInteger.optional().describe('Events held at most, dead letters included (default 100,000).'),
        maxBytes: positiveInteger.optional().describe('Payload bytes held at most, dead letters included (default 256 MiB).'),
      })
      .describe('@egress/core memoryStore'),
    z
      .looseObject({
        kind: z.literal('sqlite').describe('A durable queue in one SQLite file (@egress/store-sqlite).'),
        path: z.string().min(1).optional().describe('The queue file, relative to the config file (default .egress/queue.db).'),
        maxEvents: positiveInteger.optional().describe('Events held at most, dead letters included (default 10,000,000).'),
        maxBytes: size.optional().describe("Payload bytes held at most, dead letters included (default '4GiB')."),
        synchronous: z.enum(['normal', 'full']).optional().describe("'normal' survives a process crash; 'full' also an OS crash or power loss, at one fsync per commit."),
        busyTimeout: duration.optional().describe("How long to wait for another connection's write lock (default '5s')."),
      })
      .describe('@egress/store-sqlite sqliteStore; the package checks its options.'),
    z
      .looseObject({
        kind: z.literal('postgres').describe('A queue in PostgreSQL shared by many workers (@egress/store-postgres).'),
        connectionString: z.string().min(1).optional().describe('postgres://user:password@host:5432/database; put the password in ${env:NAME}.'),
        schema: z.string().min(1).optional().describe('Schema that holds the queue, created and migrated by the store (default egress).'),
        tablePrefix: z.string().min(1).optional().describe("Put before the name of each of the store's tables, e.g. egress_, so that the queue can live in a schema the application already uses."),
        maxEvents: positiveInteger.optional().describe('Events held at most by all processes together (default 10,000,000).'),
        maxBytes: size.optional().describe('Payload bytes held at most by all processes together (default 10 GiB).'),
        leaseMs: duration.optional().describe("How long a claim holds before another worker may take the batch over; keep it above the delivery timeout."),
        pollInterval: duration.optional().describe('How often idle workers look for work if no notification arrives (default 5 s).'),
        spool: z
          .union([z.string().min(1), z.strictObject({ path: z.string().min(1).describe('The spool file, relative to the config file.') })], {
            error: "expected the path of a spool file, e.g. '.egress/spool.db', or { path }",
          })
          .optional()
          .describe(
            "A local SQLite file, relative to the config file (e.g. '.egress/spool.db'), that keeps the events accepted while PostgreSQL cannot be reached until they are moved into it. Needs better-sqlite3; one file per process.",
          ),
        connectTimeout: duration.optional().describe('Longest wait for a connection before the attempt counts as PostgreSQL being unreachable (default 10 s).'),
        queryTimeout: duration.optional().describe('Longest one statement or transaction may take before its connection is given up as broken (default 30 s).'),
      })
      .describe('@egress/store-postgres postgresStore; the package checks its options.'),
  ])
  .describe('Where the queue lives.');

export const commitBufferSchema = z
  .strictObject({
    maxEvents: positiveInteger.optional().describe('Events accepted and not yet committed, at most (default 1,000,000).'),
    maxBytes: size.optional().describe("Their encoded bytes, at most (default '256MiB')."),
  })
  .describe("Bounds the events accepted and not yet committed to the store, which wait in this process's memory while the store is unreachable; when it is full, send fails at the call.");

export const startupSchema = z
  .enum(['retry', 'fail-fast'])
  .describe(
    "'retry' (default) opens the store in the background, again with backoff while its database is unreachable; 'fail-fast' makes ready() reject at the first failure. For loadConfig: egress worker always waits for its store, and the other commands never do.",
  );

export const metricsSchema = z
  .strictObject({
    listen: z
      .string()
      .regex(/^(\[[^\]]+\]|[^:[\]]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9464 or 0.0.0.0:9464')
      .describe('Where `egress worker` serves /metrics (Prometheus), /healthz and /readyz; `--metrics` overrides it.'),
    partitionLimit: z.number().int().min(0).optional().describe('Destinations with at most this many partitions report queue gauges per partition (default 10).'),
    statsMaxAge: duration.optional().describe("How long one reading of the store's counts serves scrapes (default '1s')."),
  })
  .describe('Metrics and health endpoints of `egress worker` (package @egress/opentelemetry).');

export const tracingSchema = z
  .boolean({ error: 'expected true or false' })
  .describe(
    "With true, `egress worker` traces its deliveries with the OpenTelemetry tracer provider registered in the process (package @egress/opentelemetry), which an SDK set up by `node --import ./otel-setup.mjs` provides; each delivery span links to its events' send spans.",
  );

export const destinationEntrySchema = z
  .looseObject({
    type: z
      .string()
      .regex(destinationNamePattern, 'expected letters, digits and underscore, starting with a letter')
      .optional()
      .describe(`Adapter: ${builtInDestinationTypes.join(', ')} (package @egress/<type>). Defaults to the entry's name.`),
    module: z
      .string()
      .min(1)
      .optional()
      .describe('A package name or a path relative to the config file that exports a destination factory (custom destinations).'),
    export: z.string().min(1).optional().describe("The factory's export name in `module` (default: the type, else `default`)."),
    listen: z
      .strictObject({
        port: z.number().int().min(0).max(65_535).describe('TCP port; 0 picks a free one.'),
        host: z.string().min(1).optional().describe('Interface to bind (default 127.0.0.1); 0.0.0.0 for every interface.'),
      })
      .optional()
      .describe('For a destination that serves subscribers itself (sse): `egress worker` listens here.'),
  })
  .describe("A destination: the adapter's options beside `type`; the adapter checks them.");

export const configFileSchema = z
  .strictObject({
    $schema: z.string().optional().describe('Path or URL of this JSON Schema, for editors.'),
    store: storeSchema.optional().describe('Where the queue lives (default: sqlite at .egress/queue.db).'),
    commitBuffer: commitBufferSchema.optional(),
    startup: startupSchema.optional(),
    metrics: metricsSchema.optional(),
    tracing: tracingSchema.optional(),
    destinations: z
      .record(z.string().regex(destinationNamePattern, 'expected a name of letters, digits and underscore, starting with a letter'), destinationEntrySchema)
      .refine((entries) => Object.keys(entries).length > 0, 'expected at least one destination')
      .describe('Each key is the `$send.<name>` the destination answers to.'),
    policies: z
      .record(z.string(), policySchema)
      .optional()
      .describe('Per destination name: batching, retries, concurrency, rate limit, ordering, timeout, dead-letter routing, circuit breaking.'),
    alerts: z.array(alertRuleSchema).optional().describe('Alert rules: dead letters, paused or disabled partitions, an old waiting event, sent through a destination.'),
  })
  .describe('Egress configuration (egress.config.yaml or egress.config.json).');

/** What an `egress.config.yaml` / `.json` holds; `defineConfig` types a config written in TypeScript. */
export type EgressConfigFile = z.input<typeof configFileSchema>;

/** The JSON Schema of the config file, as published in `@egress/cli/schema.json`. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configFileSchema, { target: 'draft-07', io: 'input' }),
    $id: 'https://unpkg.com/@egress/cli/schema.json',
    title: 'Egress configuration',
  };
}
