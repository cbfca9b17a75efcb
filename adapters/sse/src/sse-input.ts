import { z } from 'zod';
import { channelNameProblem } from './channel-name.js';

/** `$send.sse({ channel, payload })`: both required, nothing else accepted. */
export const sseInputSchema = z.strictObject({
  /** The SSE `event` field subscribers listen to with `addEventListener(channel, ...)`. */
  channel: z.string().superRefine((channel, context) => {
    const problem = channelNameProblem(channel);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  }),
  /** Any JSON value; subscribers receive it as the `data` field. */
  payload: z.json(),
});

export type SseInput = z.input<typeof sseInputSchema>;
export type SsePayload = z.output<typeof sseInputSchema>;
