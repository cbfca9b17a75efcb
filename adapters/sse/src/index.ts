export { createSseHandler, sse, type SseAddress, type SseDestination, type SseHandlers } from './sse-destination.js';
export type { SseAuthOptions, SseOptions, SseServeOptions, SseStaticToken } from './sse-options.js';
export { sseInputSchema, type SseInput, type SsePayload } from './sse-input.js';
export { resetEventName } from './stream-opening.js';
export { createSubscriberToken, type SubscriberTokenOptions } from './subscriber-token.js';
export { subscribe, SseSubscribeError, type SseEvent, type SubscribeOptions, type SubscribeReconnectOptions } from './subscribe.js';
export type { NodeSseHandler } from './node-handler.js';
export type { FetchSseHandler } from './fetch-handler.js';
