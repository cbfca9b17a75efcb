import type { DeliveryContext } from '@egress/core';

/**
 * Puts the delivery attempt's trace context (`traceparent`, `tracestate`) on a request, so the
 * receiver's trace continues Egress's. A call that set either header itself keeps its own pair
 * untouched: half of one context and half of another would name a parent nobody made.
 */
export function addTraceHeaders(headers: Record<string, string>, context: DeliveryContext): void {
  const traceHeaders = context.traceHeaders;
  if (traceHeaders === undefined) return;
  for (const name in traceHeaders) if (headers[name] !== undefined) return;
  for (const name in traceHeaders) headers[name] = traceHeaders[name]!;
}
