import { EgressConfigurationError } from '@egress/core';

export interface MiddlewareOptions {
  /**
   * Whether the answer's status commits the request's events. Default: `status < 500`, so a 5xx
   * answer discards them. A thrown error discards them whatever this says.
   */
  commitOn?: (status: number) => boolean;
}

/** What every integration checks when it is created: fail at start-up, not on the first request. */
export function checkedOptions(egress: unknown, options: unknown, integration: string): { commitOn: (status: number) => boolean } {
  if (typeof egress !== 'object' || egress === null || typeof (egress as { run?: unknown }).run !== 'function') {
    throw new EgressConfigurationError('expected the Egress instance returned by createEgress', `[${integration}] egress`);
  }
  if (options === undefined) return { commitOn: belowServerError };
  if (typeof options !== 'object' || options === null) throw new EgressConfigurationError('expected an options object', `[${integration}] options`);
  const { commitOn } = options as MiddlewareOptions;
  if (commitOn !== undefined && typeof commitOn !== 'function') {
    throw new EgressConfigurationError(`expected a function (status) => boolean, got ${typeof commitOn}`, `[${integration}] options.commitOn`);
  }
  return { commitOn: commitOn ?? belowServerError };
}

function belowServerError(status: number): boolean {
  return status < 500;
}
