export { createEgressMetrics, type EgressMetrics, type EgressMetricsOptions } from './egress-metrics.js';
export { createEgressHealth, type EgressHealth, type EgressHealthOptions, type Readiness } from './egress-health.js';
export { createObservabilityFetchHandler, createObservabilityHandler, type ObservabilityEndpoints } from './observability-handler.js';
export { parseListenAddress, serveObservability, type ObservabilityServer, type ObservabilityServerOptions } from './observability-server.js';
export { attributeKeys, metricDefinitions, type MetricDefinition, type MetricKind } from './metric-definitions.js';
export { prometheusContentType, prometheusLabelName, prometheusMetricName } from './prometheus-exposition.js';
