import type { Alert } from './alert-rule.js';

/** The `send` input for an alert: the rule's input with the alert's values put in (see `AlertTarget`). */
export function alertInput(template: unknown, alert: Alert): unknown {
  if (template === undefined) return alert;
  return fill(template, alert, 0);
}

const fields: Record<string, (alert: Alert) => string> = {
  summary: (alert) => alert.summary,
  kind: (alert) => alert.kind,
  destination: (alert) => alert.destination,
  partitions: (alert) => alert.partitions.join(', '),
  count: (alert) => String(alert.count),
  reason: (alert) => alert.reason ?? '',
};

function fill(value: unknown, alert: Alert, depth: number): unknown {
  if (typeof value === 'string') {
    if (value === '{{alert}}') return alert;
    return value.replace(/\{\{(\w+)\}\}/g, (whole, name: string) => fields[name]?.(alert) ?? whole);
  }
  // Inputs are small, literal configuration; the depth bound only guards against a cycle.
  if (depth > 32 || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((entry) => fill(entry, alert, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, fill(entry, alert, depth + 1)]));
}
