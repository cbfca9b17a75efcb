import { S3Client, ServerSideEncryption, StorageClass, type S3ClientConfig } from '@aws-sdk/client-s3';
import { EgressConfigurationError, parseSize, type Size } from '@egress/core';
import { compileKeyTemplate, defaultKeyTemplate, type KeyBuilder } from './object-key.js';

/** Options of `s3()`. Give either `client` or the client settings (`endpoint`, `region`, ...), not both. */
export interface S3DestinationOptions {
  /** An S3Client to use as it is (Egress does not destroy it at close); excludes the client settings below. */
  client?: S3Client;
  /** Endpoint of an S3-compatible store, e.g. `http://127.0.0.1:9000`; default: AWS S3 for the region. */
  endpoint?: string;
  /** AWS region; default: the usual AWS chain (`AWS_REGION`, `~/.aws/config`); with `endpoint` and no `AWS_REGION`, `us-east-1`. */
  region?: string;
  /** Address buckets as `endpoint/bucket` instead of `bucket.endpoint`; most S3-compatible stores need it. Default false. */
  forcePathStyle?: boolean;
  /** Credentials or a credential provider; default: the usual AWS chain (environment, config files, SSO, container or instance role). */
  credentials?: S3ClientConfig['credentials'];
  /** Attempts the AWS SDK makes inside one delivery before the failure goes back to Egress's retry policy. Default 3 (the SDK's). */
  maxAttempts?: number;
  /** Object key template; placeholders `{prefix}` `{YYYY}` `{MM}` `{DD}` `{HH}` `{mm}` `{ss}` (UTC) and `{id}` (required). Default Pipedream's layout. */
  key?: string;
  /** gzip level from 0 (stored, fastest) to 9 (smallest). Default 6. */
  compressionLevel?: number;
  /** Storage class of every object, e.g. `STANDARD_IA`; default: the bucket's (STANDARD). */
  storageClass?: StorageClass;
  /** Server-side encryption: `AES256`, `aws:kms` or `aws:kms:dsse`; default: the bucket's. */
  serverSideEncryption?: ServerSideEncryption;
  /** KMS key id or ARN, with `serverSideEncryption: 'aws:kms'` or `'aws:kms:dsse'`; default: the account's S3 key. */
  sseKmsKeyId?: string;
  /** Compressed objects at least this large go up by multipart upload; smaller ones by one PutObject. Default 8 MiB, at least 5 MiB. */
  multipartThreshold?: Size;
  /** Size of each multipart part (the last may be smaller). Default 8 MiB; 5 MiB to 5 GiB. */
  multipartPartSize?: Size;
  /** Parts of one object uploaded at once. Default 4. */
  multipartConcurrency?: number;
}

/** The options after checking, with every default filled in. */
export interface ResolvedS3Options {
  client: S3Client;
  ownsClient: boolean;
  buildKey: KeyBuilder;
  compressionLevel: number;
  storageClass: StorageClass | undefined;
  serverSideEncryption: ServerSideEncryption | undefined;
  sseKmsKeyId: string | undefined;
  multipartThreshold: number;
  multipartPartSize: number;
  multipartConcurrency: number;
}

const mebibyte = 1024 * 1024;
/** S3's bounds on a part (the last part may be smaller) and on how many parts one object has. */
export const minimumPartSize = 5 * mebibyte;
export const maximumPartSize = 5 * 1024 * mebibyte;
export const maximumParts = 10_000;

const clientSettings = ['endpoint', 'region', 'forcePathStyle', 'credentials', 'maxAttempts'] as const;
const knownOptions: readonly string[] = [
  'client',
  ...clientSettings,
  'key',
  'compressionLevel',
  'storageClass',
  'serverSideEncryption',
  'sseKmsKeyId',
  'multipartThreshold',
  'multipartPartSize',
  'multipartConcurrency',
];

function optionPath(name: string): string {
  return `[s3] option "${name}"`;
}

/** Checks every option at construction and fails with the option's name, so a mistake shows at start-up. */
export function resolveS3Options(options: S3DestinationOptions): ResolvedS3Options {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new EgressConfigurationError(`expected an options object, got ${JSON.stringify(options)}`, '[s3] options');
  }
  for (const name of Object.keys(options)) {
    if (!knownOptions.includes(name)) {
      throw new EgressConfigurationError(`unknown option (expected one of ${knownOptions.join(', ')})`, optionPath(name));
    }
  }

  const given = options as Record<string, unknown>;
  if (options.client !== undefined) {
    if (!(options.client instanceof S3Client)) {
      throw new EgressConfigurationError('expected an S3Client from @aws-sdk/client-s3', optionPath('client'));
    }
    const conflicting = clientSettings.find((name) => given[name] !== undefined);
    if (conflicting) {
      throw new EgressConfigurationError('cannot be given together with "client": configure the S3Client instead', optionPath(conflicting));
    }
  }
  if (options.endpoint !== undefined) {
    let protocol: string | undefined;
    try {
      protocol = new URL(options.endpoint).protocol;
    } catch {
      protocol = undefined;
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      throw new EgressConfigurationError(`expected an http:// or https:// URL, got ${JSON.stringify(options.endpoint)}`, optionPath('endpoint'));
    }
  }
  if (options.region !== undefined && (typeof options.region !== 'string' || !/^[a-z0-9-]+$/.test(options.region))) {
    throw new EgressConfigurationError(`expected a region name such as "eu-west-1", got ${JSON.stringify(options.region)}`, optionPath('region'));
  }
  if (options.forcePathStyle !== undefined && typeof options.forcePathStyle !== 'boolean') {
    throw new EgressConfigurationError(`expected true or false, got ${JSON.stringify(options.forcePathStyle)}`, optionPath('forcePathStyle'));
  }
  if (options.credentials !== undefined) {
    const credentials = options.credentials as unknown;
    const isIdentity =
      typeof credentials === 'object' &&
      credentials !== null &&
      typeof (credentials as { accessKeyId?: unknown }).accessKeyId === 'string' &&
      typeof (credentials as { secretAccessKey?: unknown }).secretAccessKey === 'string';
    // The message never repeats the value: it may hold a secret key.
    if (!isIdentity && typeof credentials !== 'function') {
      throw new EgressConfigurationError('expected { accessKeyId, secretAccessKey, sessionToken? } or a credential provider function', optionPath('credentials'));
    }
  }
  const maxAttempts = positiveInteger(options.maxAttempts, 'maxAttempts', 3);
  const compressionLevel = options.compressionLevel ?? 6;
  if (!Number.isInteger(compressionLevel) || compressionLevel < 0 || compressionLevel > 9) {
    throw new EgressConfigurationError(`expected an integer from 0 to 9, got ${JSON.stringify(options.compressionLevel)}`, optionPath('compressionLevel'));
  }
  const storageClasses: readonly string[] = Object.values(StorageClass);
  if (options.storageClass !== undefined && !storageClasses.includes(options.storageClass)) {
    throw new EgressConfigurationError(`expected one of ${storageClasses.join(', ')}, got ${JSON.stringify(options.storageClass)}`, optionPath('storageClass'));
  }
  const encryptions: readonly string[] = Object.values(ServerSideEncryption);
  if (options.serverSideEncryption !== undefined && !encryptions.includes(options.serverSideEncryption)) {
    throw new EgressConfigurationError(`expected one of ${encryptions.join(', ')}, got ${JSON.stringify(options.serverSideEncryption)}`, optionPath('serverSideEncryption'));
  }
  if (options.sseKmsKeyId !== undefined) {
    if (typeof options.sseKmsKeyId !== 'string' || options.sseKmsKeyId.length === 0) {
      throw new EgressConfigurationError('expected a KMS key id or ARN', optionPath('sseKmsKeyId'));
    }
    if (!options.serverSideEncryption?.startsWith('aws:kms')) {
      throw new EgressConfigurationError('needs serverSideEncryption "aws:kms" or "aws:kms:dsse" beside it', optionPath('sseKmsKeyId'));
    }
  }
  const multipartThreshold = size(options.multipartThreshold, 'multipartThreshold', 8 * mebibyte);
  if (multipartThreshold < minimumPartSize) {
    throw new EgressConfigurationError(`expected at least 5 MiB (S3's smallest part), got ${multipartThreshold} bytes`, optionPath('multipartThreshold'));
  }
  const multipartPartSize = size(options.multipartPartSize, 'multipartPartSize', 8 * mebibyte);
  if (multipartPartSize < minimumPartSize || multipartPartSize > maximumPartSize) {
    throw new EgressConfigurationError(`expected 5 MiB to 5 GiB (S3's part sizes), got ${multipartPartSize} bytes`, optionPath('multipartPartSize'));
  }
  const multipartConcurrency = positiveInteger(options.multipartConcurrency, 'multipartConcurrency', 4);
  const buildKey = compileKeyTemplate(options.key ?? defaultKeyTemplate, optionPath('key'));

  const client =
    options.client ??
    new S3Client({
      ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
      ...(options.region !== undefined && { region: options.region }),
      // S3-compatible stores mostly ignore the region, but the SDK refuses to sign without one.
      ...(options.region === undefined && options.endpoint !== undefined && { region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1' }),
      ...(options.forcePathStyle !== undefined && { forcePathStyle: options.forcePathStyle }),
      ...(options.credentials !== undefined && { credentials: options.credentials }),
      maxAttempts,
    });
  return {
    client,
    ownsClient: options.client === undefined,
    buildKey,
    compressionLevel,
    storageClass: options.storageClass,
    serverSideEncryption: options.serverSideEncryption,
    sseKmsKeyId: options.sseKmsKeyId,
    multipartThreshold,
    multipartPartSize,
    multipartConcurrency,
  };
}

function positiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new EgressConfigurationError(`expected a positive integer, got ${JSON.stringify(value)}`, optionPath(name));
  }
  return value;
}

function size(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = parseSize(value);
  if (typeof parsed !== 'number') throw new EgressConfigurationError(parsed.error, optionPath(name));
  return parsed;
}
