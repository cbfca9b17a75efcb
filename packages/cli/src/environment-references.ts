import { redactSecrets as redactWithCore } from '@egress/core';

/** `${env:NAME}` anywhere in a string value; NAME as a shell variable name. */
const referencePattern = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

export interface Substitution {
  /** The value with every reference replaced. */
  value: unknown;
  /** Variables that were referenced but not set, with the path of the value that named them. */
  missing: { path: (string | number)[]; variable: string }[];
  /** Values read from the environment: never to be printed (see `Redactor`). */
  secrets: Set<string>;
}

/**
 * Replaces `${env:NAME}` in every string of a parsed config. Secrets stay out of the file this way,
 * and the values read are remembered so that no message shows them.
 */
export function substituteEnvironment(value: unknown, environment: NodeJS.ProcessEnv): Substitution {
  const result: Substitution = { value: undefined, missing: [], secrets: new Set() };
  result.value = walk(value, [], environment, result);
  return result;
}

function walk(value: unknown, path: (string | number)[], environment: NodeJS.ProcessEnv, result: Substitution): unknown {
  if (typeof value === 'string') {
    return value.replace(referencePattern, (_reference, variable: string) => {
      const found = environment[variable];
      if (found === undefined) {
        result.missing.push({ path, variable });
        return '';
      }
      if (found.length > 0) result.secrets.add(found);
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => walk(item, [...path, index], environment, result));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, walk(item, [...path, key], environment, result)]));
  }
  return value;
}

/**
 * Masks values that came from the environment in any text about to be shown, through core's
 * redaction step: in every spelling (URL-encoded, base64...), and credential-looking values too.
 */
export function redactSecrets(text: string, secrets: ReadonlySet<string>): string {
  return redactWithCore(text, secrets);
}
