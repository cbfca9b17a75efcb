export { http } from './http-destination.js';
export { httpInputSchema, httpMethods, type HttpInput, type HttpMethod, type HttpPayload } from './http-input-schema.js';
export type { HttpOptions } from './http-options.js';
export { AddressRefusedError } from './address-guard.js';
export { HttpStatusError } from './response-outcome.js';
