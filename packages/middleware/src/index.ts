export type { MiddlewareOptions } from './middleware-options.js';
export type { Register, RegisteredEgress, RegisteredSend, SendOf } from './register.js';
