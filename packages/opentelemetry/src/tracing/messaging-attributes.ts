/**
 * Attribute names from the OpenTelemetry messaging semantic conventions, and Egress's own under
 * `egress.`. Written out rather than imported from @opentelemetry/semantic-conventions, whose
 * messaging names are still marked incubating and move between its entry points.
 */
export const messagingAttributes = {
  system: 'messaging.system',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  destinationName: 'messaging.destination.name',
  messageId: 'messaging.message.id',
  batchMessageCount: 'messaging.batch.message_count',
  errorType: 'error.type',
  batchId: 'egress.batch.id',
  deliveryAttempt: 'egress.delivery.attempt',
  delivered: 'egress.delivery.delivered',
  retrying: 'egress.delivery.retrying',
  dead: 'egress.delivery.dead',
} as const;

/** `messaging.system` for every span Egress makes. */
export const messagingSystem = 'egress';
