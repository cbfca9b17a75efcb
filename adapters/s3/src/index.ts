export { defaultKeyTemplate } from './object-key.js';
export { s3, type S3QueuedPayload } from './s3-destination.js';
export type { JsonValue, S3Input, S3Payload } from './s3-input-schema.js';
export type { S3DestinationOptions } from './s3-options.js';
