import type { ReplayPlan } from './stream-hub.js';
import { concatenate, eventFrame, retryFrame } from './wire-format.js';

/** The name of the control event sent when `Last-Event-ID` cannot be honoured. */
export const resetEventName = 'egress-reset';

/** The first bytes of a stream: the reconnection delay, a reset notice if any, then the replay. */
export function openingBytes(plan: ReplayPlan, reconnectDelay: number): Buffer {
  const chunks: Buffer[] = [retryFrame(reconnectDelay)];
  if (plan.reset !== undefined) {
    const { reason, lastEventId, missed, resumeAfter } = plan.reset;
    chunks.push(eventFrame(resumeAfter, resetEventName, JSON.stringify({ reason, lastEventId, missed, resumeAfter })));
  }
  for (const event of plan.events) chunks.push(event.frame);
  return concatenate(chunks);
}
