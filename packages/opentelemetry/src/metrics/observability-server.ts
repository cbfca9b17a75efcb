import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EgressConfigurationError, type Egress } from '@egress/core';
import { createEgressHealth, type EgressHealth, type EgressHealthOptions } from './egress-health.js';
import { createEgressMetrics, type EgressMetrics, type EgressMetricsOptions } from './egress-metrics.js';
import { createObservabilityHandler } from './observability-handler.js';

export interface ObservabilityServerOptions extends EgressMetricsOptions, EgressHealthOptions {
  /** Where to listen, `host:port` (`127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:9464`); port 0 picks a free one. */
  listen: string;
}

export interface ObservabilityServer {
  /** The address it listens on, e.g. `http://127.0.0.1:9464`. */
  readonly url: string;
  readonly metrics: EgressMetrics;
  readonly health: EgressHealth;
  /** Stops listening and stops recording; idempotent. */
  close(): Promise<void>;
}

/** Parses `host:port`; the error names what was wrong. */
export function parseListenAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port > 65_535) {
    throw new EgressConfigurationError(`expected host:port, e.g. 127.0.0.1:9464 or 0.0.0.0:9464 (got ${JSON.stringify(address)})`, '[opentelemetry] listen address');
  }
  return { host: (match[1] ?? match[2])!, port };
}

/** Serves `/metrics`, `/healthz` and `/readyz` for one engine on a server of its own. */
export async function serveObservability(egress: Egress, options: ObservabilityServerOptions): Promise<ObservabilityServer> {
  const { host, port } = parseListenAddress(options.listen);
  const metrics = createEgressMetrics(egress, options);
  const health = createEgressHealth(egress, options);
  const server = createServer(createObservabilityHandler({ metrics, health }));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    metrics.close();
    throw new EgressConfigurationError(`cannot listen on ${options.listen}: ${(error as Error).message}`, '[opentelemetry] listen address', { cause: error });
  }
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}`,
    metrics,
    health,
    close() {
      closing ??= new Promise<void>((resolve) => {
        metrics.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
