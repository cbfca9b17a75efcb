import { EgressCapacityError } from './errors.js';
import type { ErrorRecord } from './store.js';

/** What `send` returns: the event id at once, and the outcome for whoever wants to wait for it. */
export interface Receipt {
  /** Time-ordered event id (UUIDv7), also the idempotency key at the sink. */
  readonly id: string;
  /** The destination's name. */
  readonly destination: string;
  /** False when the store was full and `overflow: 'drop'` discarded the event. */
  readonly accepted: boolean;
  /**
   * Resolves once the store took the event. While the store is unreachable the event waits in the
   * commit buffer and this waits with it. Rejects if its unit of work was discarded or refused, or
   * if the event never reached the store (the store failed for good, or `close()` gave up on it).
   */
  committed(): Promise<void>;
  /**
   * Resolves once the event was delivered or dead-lettered. An event whose dead letter was purged
   * before anyone asked reads as delivered: the store keeps no trace of either.
   */
  settled(): Promise<DeliveryOutcome>;
}

export type DeliveryOutcome = { status: 'delivered' } | { status: 'dead'; error: ErrorRecord } | { status: 'dropped' };

/** What a receipt asks the engine once its event is committed. */
export interface OutcomeSource {
  waitForOutcome(id: string, committed: Promise<void>): Promise<DeliveryOutcome>;
}

/**
 * One object per accepted send, its methods shared on the prototype: receipts are on the hot path.
 * It keeps only the commit's promise, not the commit group: a receipt held after delivery must not
 * keep every payload of its burst alive.
 */
export class AcceptedReceipt implements Receipt {
  readonly accepted = true;

  constructor(
    readonly id: string,
    readonly destination: string,
    private readonly commit: Promise<void>,
    private readonly outcomes: OutcomeSource,
  ) {}

  committed(): Promise<void> {
    return this.commit;
  }

  settled(): Promise<DeliveryOutcome> {
    return this.outcomes.waitForOutcome(this.id, this.commit);
  }
}

/** The receipt of an event that `overflow: 'drop'` discarded at the call. */
export function droppedReceipt(id: string, destination: string, reason: string): Receipt {
  const refused = new EgressCapacityError(`event ${id} was dropped: ${reason}`);
  return {
    id,
    destination,
    accepted: false,
    committed: () => Promise.reject(refused),
    settled: () => Promise.resolve({ status: 'dropped' }),
  };
}
