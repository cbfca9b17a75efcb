export { createBatchId } from './batch-id.js';
export {
  DESTINATION_SPECIFICATION_VERSION,
  SUPPORTED_SPECIFICATION_VERSIONS,
  assertDestination,
  defineDestination,
  type AnyDestination,
  type Batch,
  type BatchEvent,
  type DeliveryContext,
  type DeliveryReport,
  type Destination,
  type DestinationInput,
  type DestinationLimits,
  type HealthReport,
  type LifecycleContext,
} from './destination.js';
export {
  EgressCapacityError,
  EgressClosedError,
  EgressConfigurationError,
  EgressDeliveryError,
  EgressError,
  EgressStoreError,
  EgressStoreUnavailableError,
  EgressTimeoutError,
  EgressValidationError,
  PermanentError,
  RetryableError,
  describeCause,
  type ValidationIssue,
} from './errors.js';
export { createEventId, eventIdTime } from './event-id.js';
export { consoleLogger, silentLogger, type Logger } from './logger.js';
export { memoryStore, type MemoryStoreOptions } from './memory-store.js';
export { decodePayload, encodePayload } from './payload-codec.js';
export type {
  AdaptiveConcurrencyOptions,
  BatchPolicyOptions,
  CircuitPolicyOptions,
  DeadLetterRoutingOptions,
  PolicyOptions,
  RateLimitOptions,
  RetryPolicyOptions,
  RoutedDeadLetter,
} from './policy-options.js';
export { claimable, meetsExpectation } from './partition-state.js';
export type { Alert, AlertRule, AlertTarget, AlertTrigger } from './alerts/alert-rule.js';
export { corePolicyDefaults, resolvePolicy, type ResolvedPolicy } from './policy.js';
export { checkDeadLetterRoutes, type ResolvedDeadLetterRouting } from './dead-letter-routing.js';
export { adaptiveConcurrencyDefaults } from './concurrency-policy.js';
export type {
  ClaimRequest,
  ClaimResult,
  ClaimedBatch,
  DeadLetterQuery,
  ErrorRecord,
  PartitionState,
  PartitionStateChange,
  QueuedEvent,
  Settlement,
  Store,
  StoreContext,
  StoreStats,
  StoreStatus,
  StoredDeadLetter,
} from './store.js';
export { maxTraceLength, type DeliveryTrace, type DeliveryTraceOutcome, type Tracing } from './tracing.js';
export { StoreStatsTable } from './store-stats-table.js';
export { parseDuration, parseSize, type Duration, type Size } from './units.js';
export {
  createEgress,
  type CloseOptions,
  type DeadLetter,
  type DestinationStats,
  type Egress,
  type EgressOptions,
  type FlushOptions,
  type PartitionStats,
  type RunOptions,
  type RunSyncOptions,
  type SendFunctions,
} from './egress.js';
export type { DeliveryOutcome, Receipt } from './receipt.js';
export type { ConcurrencyChange, EgressEventName, EgressEvents, EgressStoreStatus } from './egress-events.js';
export type { LatencySummary } from './latency-histogram.js';
export { formatPath } from './validation.js';
export { SecretRedactor, isSecretName, redactSecrets, redactedMark, secretForms } from './secret-redaction.js';
export { defaultMaxDepth, defaultMaxInputBytes } from './input-snapshot.js';
