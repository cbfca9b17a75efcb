import { z } from 'zod';
import { channelNameProblem } from './channel-name.js';

const jsonValue = z.json();
type JsonValue = z.infer<typeof jsonValue>;

/** `$send.sse({ channel, payload })`: both required, nothing else accepted. */
export const sseInputSchema = z.strictObject(
  {
    /** The SSE `event` field subscribers listen to with `addEventListener(channel, ...)`. */
    channel: z
      .string({ error: (issue) => (issue.input === undefined ? 'required: the channel name, a string' : `expected a string, got ${describe(issue.input)}`) })
      .superRefine((channel, context) => {
        const problem = channelNameProblem(channel);
        if (problem) context.addIssue({ code: 'custom', message: problem });
      }),
    /** Any JSON value; subscribers receive it as the `data` field. */
    // zod's own JSON schema answers only "Invalid input"; this one says what was wrong.
    payload: z.custom<JsonValue>((value) => jsonValue.safeParse(value).success, {
      error: (issue) =>
        issue.input === undefined
          ? 'required: any JSON value (subscribers receive it as the event\'s "data")'
          : `expected a JSON value (object, array, string, finite number, boolean or null), got ${describe(issue.input)}`,
    }),
  },
  {
    error: (issue) => {
      if (issue.code !== 'unrecognized_keys') return undefined;
      const names = issue.keys.map((key) => `"${key}"`).join(', ');
      const hint = issue.keys.includes('data') ? ': the event goes in "payload" (subscribers receive it as "data")' : '';
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${names}${hint} (known: channel, payload)`;
    },
  },
);

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'bigint') return 'a bigint';
  if (typeof value === 'number') return String(value);
  return typeof value === 'object' ? 'an object that is not plain JSON' : `a ${typeof value}`;
}

export type SseInput = z.input<typeof sseInputSchema>;
export type SsePayload = z.output<typeof sseInputSchema>;
