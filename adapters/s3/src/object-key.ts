import { EgressConfigurationError } from '@egress/core';

/** The key layout of Pipedream's S3 destination. */
export const defaultKeyTemplate = '{prefix}/{YYYY}/{MM}/{DD}/{HH}/{YYYY}-{MM}-{DD}-{HH}-{mm}-{ss}-{id}.gz';

const placeholders = ['prefix', 'YYYY', 'MM', 'DD', 'HH', 'mm', 'ss', 'id'] as const;
type Placeholder = (typeof placeholders)[number];

/** Turns a template into a function from (prefix, time, batch id) to an object key. */
export type KeyBuilder = (prefix: string, time: Date, id: string) => string;

/**
 * Checks a key template once, at construction. It must hold `{id}`: without it two batches of the
 * same second would write the same key and the second would silently replace the first.
 */
export function compileKeyTemplate(template: string, optionPath: string): KeyBuilder {
  if (typeof template !== 'string' || template.length === 0) {
    throw new EgressConfigurationError(`expected a non-empty string such as ${JSON.stringify(defaultKeyTemplate)}`, optionPath);
  }
  const segments: (string | { placeholder: Placeholder })[] = [];
  const known = new Set<string>(placeholders);
  let hasId = false;
  let last = 0;
  for (const match of template.matchAll(/\{([^{}]*)\}/g)) {
    const name = match[1]!;
    if (!known.has(name)) {
      throw new EgressConfigurationError(`unknown placeholder {${name}} (expected ${placeholders.map((entry) => `{${entry}}`).join(', ')})`, optionPath);
    }
    if (name === 'id') hasId = true;
    segments.push(template.slice(last, match.index), { placeholder: name as Placeholder });
    last = match.index + match[0].length;
  }
  segments.push(template.slice(last));
  if (!hasId) {
    throw new EgressConfigurationError('must contain {id}, the batch id, so that every batch gets its own object and a retry overwrites its own', optionPath);
  }
  return (prefix, time, id) => {
    const values: Record<Placeholder, string> = {
      prefix,
      YYYY: String(time.getUTCFullYear()).padStart(4, '0'),
      MM: pad(time.getUTCMonth() + 1),
      DD: pad(time.getUTCDate()),
      HH: pad(time.getUTCHours()),
      mm: pad(time.getUTCMinutes()),
      ss: pad(time.getUTCSeconds()),
      id,
    };
    let key = '';
    for (const segment of segments) key += typeof segment === 'string' ? segment : values[segment.placeholder];
    return normalizeKey(key);
  };
}

function pad(value: number): string {
  return value < 10 ? `0${value}` : String(value);
}

const normalizedPrefixes = new Map<string, string>();

/** A prefix as it goes into keys: no leading, trailing or repeated slash (`/a//b/` → `a/b`). */
export function normalizePrefix(prefix: string): string {
  // Called for every event to partition it; an application uses few prefixes, so remember them.
  let normalized = normalizedPrefixes.get(prefix);
  if (normalized === undefined) {
    normalized = prefix.split('/').filter((segment) => segment.length > 0).join('/');
    if (normalizedPrefixes.size >= 1000) normalizedPrefixes.clear();
    normalizedPrefixes.set(prefix, normalized);
  }
  return normalized;
}

/** Removes what an empty prefix or a slash-ended one would leave behind: `//` and a leading `/`. */
function normalizeKey(key: string): string {
  return key.replace(/\/{2,}/g, '/').replace(/^\//, '');
}
