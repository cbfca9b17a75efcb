import { createBatchId, createEventId, silentLogger, type Batch, type DeliveryReport, type Destination } from '@egress/core';
import type { SqlInput, SqlPayload } from '../src/index.js';

export type SqlDestination = Destination<string, SqlInput, SqlPayload>;

/** A batch as core would hand it over, built from `$send` inputs checked by the destination's own schema. */
export function batchOf(destination: SqlDestination, inputs: readonly SqlInput[], attempt = 1): Batch<SqlPayload> {
  const events = inputs.map((input) => {
    const result = destination.input['~standard'].validate(input);
    if (result instanceof Promise) throw new Error('validation must be synchronous');
    if (result.issues) throw new Error(`invalid input ${JSON.stringify(input)}: ${JSON.stringify(result.issues)}`);
    return { id: createEventId(), payload: result.value, attempt, sentAt: Date.now() };
  });
  return { id: createBatchId(destination.name, events.map((event) => event.id)), destination: destination.name, partition: inputs[0]!.table, attempt, events };
}

export async function deliver(destination: SqlDestination, batch: Batch<SqlPayload>): Promise<DeliveryReport | void> {
  return destination.deliver(batch, { signal: new AbortController().signal, logger: silentLogger });
}

export async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}
