import { EgressConfigurationError, parseDuration, type Duration, type Egress, type HealthReport } from '@egress/core';

export interface EgressHealthOptions {
  /** How long `/readyz` waits for the destinations' `health()` before counting them unhealthy. Default `'2s'`. */
  destinationTimeout?: Duration;
}

/** What `/readyz` answers, as JSON. */
export interface Readiness {
  readonly ready: boolean;
  /** Why it is not ready, one sentence per cause; empty when ready. */
  readonly reasons: string[];
  readonly store: { kind: string; state: string; since: number };
  readonly destinations: Record<string, HealthReport>;
}

/** Liveness and readiness of one engine, for `/healthz` and `/readyz`. */
export interface EgressHealth {
  /** Ready: the engine started and is not stopping, its store is connected and every destination's `health()` says ok. */
  readiness(): Promise<Readiness>;
  /** Marks the engine as shutting down, so `/readyz` turns unready before `close()` ends (a load balancer stops sending first). */
  stopping(): void;
}

export function createEgressHealth(egress: Egress, options: EgressHealthOptions = {}): EgressHealth {
  const destinationTimeout = parseDuration(options.destinationTimeout ?? 2000);
  if (typeof destinationTimeout !== 'number') throw new EgressConfigurationError(destinationTimeout.error, '[opentelemetry] option "destinationTimeout"');
  let started = false;
  let stopping = false;
  egress.ready().then(
    () => (started = true),
    () => {},
  );
  return {
    stopping() {
      stopping = true;
    },
    async readiness() {
      const reasons: string[] = [];
      if (stopping) reasons.push('the engine is shutting down');
      else if (!started) reasons.push('the engine has not started yet');
      const status = egress.storeStatus();
      if (status.state !== 'connected') reasons.push(`the ${status.kind} store is ${status.state}${status.error ? `: ${status.error}` : ''}`);
      const destinations = await withTimeout(egress.health(), destinationTimeout);
      if (!destinations) reasons.push(`the destinations did not answer their health check within ${destinationTimeout} ms`);
      for (const [name, report] of Object.entries(destinations ?? {})) {
        if (!report.ok) reasons.push(`destination ${name} is unhealthy${report.message ? `: ${report.message}` : ''}`);
      }
      return { ready: reasons.length === 0, reasons, store: { kind: status.kind, state: status.state, since: status.since }, destinations: destinations ?? {} };
    },
  };
}

async function withTimeout<T>(promise: Promise<T>, milliseconds: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, milliseconds, undefined)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
