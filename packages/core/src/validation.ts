import type { StandardSchemaV1 } from '@standard-schema/spec';
import { EgressConfigurationError, EgressValidationError, describeCause, type ValidationIssue } from './errors.js';

/**
 * Runs a destination's input schema synchronously. `$send` must answer at once, so a schema that
 * validates asynchronously is a configuration error rather than something to await.
 */
export function validateInput<Output>(destination: string, schema: StandardSchemaV1<unknown, Output>, input: unknown): Output {
  let result: StandardSchemaV1.Result<Output> | Promise<StandardSchemaV1.Result<Output>>;
  try {
    result = schema['~standard'].validate(input);
  } catch (error) {
    throw new EgressValidationError(destination, [{ path: '', message: `the input schema failed on this input: ${describeCause(error)}` }]);
  }
  if (result instanceof Promise) {
    // Nobody awaits it: its rejection must not reach the process as an unhandled one.
    result.catch(() => {});
    throw new EgressConfigurationError('the input schema validates asynchronously; $send needs a synchronous schema', `[${destination}] input`);
  }
  if (result.issues) throw new EgressValidationError(destination, result.issues.map(toIssue));
  return result.value;
}

function toIssue(issue: StandardSchemaV1.Issue): ValidationIssue {
  return { path: formatPath(issue.path ?? []), message: issue.message };
}

export function formatPath(path: ReadonlyArray<PropertyKey | StandardSchemaV1.PathSegment>): string {
  let text = '';
  for (const segment of path) {
    const key = typeof segment === 'object' ? segment.key : segment;
    if (typeof key === 'number') text += `[${key}]`;
    else text += text ? `.${String(key)}` : String(key);
  }
  return text;
}
