import { PermanentError, RetryableError } from '@egress/core';

/** Error codes that no retry can fix: the bucket, the permissions or the request itself is wrong. */
const permanentCodes = new Set([
  'NoSuchBucket',
  'AccessDenied',
  'AllAccessDisabled',
  'AccountProblem',
  'InvalidBucketName',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidArgument',
  'InvalidRequest',
  'InvalidStorageClass',
  'InvalidEncryptionAlgorithmError',
  'KMS.NotFoundException',
  'KMS.DisabledException',
  'EntityTooLarge',
  'MethodNotAllowed',
  'NotImplemented',
  'InvalidObjectState',
  'KeyTooLongError',
]);

/** Codes S3 uses to ask for a slower pace or to say it could not answer now. */
const retryableCodes = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'RequestTimeout',
  'RequestTimeoutException',
  'RequestTimeTooSkewed',
  'InternalError',
  'ServiceUnavailable',
  'ExpiredToken',
  'TimeoutError',
  'AbortError',
]);

interface SdkErrorShape {
  name?: unknown;
  Code?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown; requestId?: unknown };
  $response?: { headers?: Record<string, string | undefined> };
}

/**
 * What an S3 failure means for the batch: permanent when the request can never succeed as it is
 * (missing bucket, access denied, invalid name), retryable otherwise, with S3's `Retry-After` when
 * it sent one. An unknown failure is retryable: it is no proof that the object can never be written.
 *
 * The message and the cause carry the operation, the bucket, the error code and S3's message only,
 * never the raw SDK error, whose fields could echo request details such as an access key id.
 */
export function classifyS3Error(error: unknown, operation: string, location: string): RetryableError | PermanentError {
  const shape = (typeof error === 'object' && error !== null ? error : {}) as SdkErrorShape;
  const code = stringOrUndefined(shape.Code) ?? stringOrUndefined(shape.code) ?? stringOrUndefined(shape.name) ?? 'Error';
  const status = typeof shape.$metadata?.httpStatusCode === 'number' ? shape.$metadata.httpStatusCode : undefined;
  const reason = sanitize(stringOrUndefined(shape.message) ?? String(error));
  const message = `[s3] ${operation} ${location} failed: ${code}${status === undefined ? '' : ` (HTTP ${status})`}: ${reason}`;
  const cause = Object.assign(new Error(reason), {
    name: code,
    ...(status !== undefined && { statusCode: status }),
    ...(typeof shape.$metadata?.requestId === 'string' && { requestId: shape.$metadata.requestId }),
  });

  if (retryableCodes.has(code)) return new RetryableError(message, { cause, retryAfter: retryAfter(shape) });
  if (permanentCodes.has(code)) return new PermanentError(message, { cause });
  if (status !== undefined) {
    if (status >= 500 || status === 429 || status === 408) return new RetryableError(message, { cause, retryAfter: retryAfter(shape) });
    // 404 without NoSuchBucket (e.g. a proxy in front of the store) is no proof the bucket is gone.
    if (status >= 400 && status !== 404) return new PermanentError(message, { cause });
  }
  return new RetryableError(message, { cause });
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** Milliseconds from a `Retry-After` header in seconds or as an HTTP date. */
function retryAfter(shape: SdkErrorShape): number | undefined {
  const header = shape.$response?.headers?.['retry-after'];
  if (header === undefined) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** S3 messages are plain; a credential-looking token in a proxy's message is masked all the same. */
function sanitize(message: string): string {
  return message.replace(/(AKIA|ASIA)[A-Z0-9]{12,}/g, '[redacted]').slice(0, 500);
}
