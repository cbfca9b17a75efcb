import type { MetricDefinition } from './metric-definitions.js';
import type { MetricPoint, MetricReading } from './metric-registry.js';

/** The content type of the Prometheus text exposition format this writer produces. */
export const prometheusContentType = 'text/plain; version=0.0.4; charset=utf-8';

/** Units spelled out as the OpenTelemetry-to-Prometheus compatibility rules spell them. */
const unitSuffixes: Record<string, string> = { s: 'seconds', ms: 'milliseconds', By: 'bytes', '1': 'ratio' };

/**
 * The Prometheus name of an OpenTelemetry metric, per the compatibility specification: characters
 * Prometheus does not allow become `_`, the unit is appended spelled out (annotations in braces are
 * dropped), and counters end in `_total`.
 */
export function prometheusMetricName(definition: MetricDefinition): string {
  let name = sanitize(definition.name);
  const unit = definition.unit.startsWith('{') ? undefined : unitSuffixes[definition.unit];
  if (unit && !(definition.unit === '1' && definition.kind !== 'gauge') && !name.endsWith(`_${unit}`)) name += `_${unit}`;
  if (definition.kind === 'counter') name += '_total';
  return name;
}

/** The Prometheus label name of an OpenTelemetry attribute key: `messaging.destination.name` becomes `messaging_destination_name`. */
export function prometheusLabelName(attribute: string): string {
  return sanitize(attribute);
}

/** Writes readings in the Prometheus text exposition format (version 0.0.4). */
export function writePrometheusText(readings: readonly MetricReading[]): string {
  const lines: string[] = [];
  for (const { definition, points } of readings) {
    const name = prometheusMetricName(definition);
    lines.push(`# HELP ${name} ${escapeHelp(definition.description)}`);
    lines.push(`# TYPE ${name} ${definition.kind}`);
    for (const point of points) writePoint(lines, name, definition, point);
  }
  return `${lines.join('\n')}\n`;
}

function writePoint(lines: string[], name: string, definition: MetricDefinition, point: MetricPoint): void {
  if ('value' in point) {
    lines.push(`${name}${labels(point.attributes)} ${formatNumber(point.value)}`);
    return;
  }
  const { histogram } = point;
  const boundaries = definition.boundaries ?? [];
  let cumulative = 0;
  for (let bucket = 0; bucket <= boundaries.length; bucket += 1) {
    cumulative += histogram.bucketCounts[bucket] ?? 0;
    const le = bucket < boundaries.length ? formatNumber(boundaries[bucket]!) : '+Inf';
    lines.push(`${name}_bucket${labels(point.attributes, le)} ${cumulative}`);
  }
  lines.push(`${name}_sum${labels(point.attributes)} ${formatNumber(histogram.sum)}`);
  lines.push(`${name}_count${labels(point.attributes)} ${histogram.count}`);
}

function labels(attributes: Readonly<Record<string, string>>, le?: string): string {
  const pairs = Object.entries(attributes).map(([key, value]) => `${prometheusLabelName(key)}="${escapeLabelValue(value)}"`);
  if (le !== undefined) pairs.push(`le="${le}"`);
  return pairs.length > 0 ? `{${pairs.join(',')}}` : '';
}

function sanitize(name: string): string {
  const replaced = name.replace(/[^a-zA-Z0-9_:]/g, '_').replace(/__+/g, '_');
  return /^[0-9]/.test(replaced) ? `_${replaced}` : replaced;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}
