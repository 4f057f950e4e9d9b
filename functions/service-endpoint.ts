// The endpoint factory of functions/api/: the http stack bound to the process dependencies that wiring.ts builds.
// Kept apart from wiring.ts so that the workers, which import wiring, do not bundle the middy stack.
import { endpointFactory } from '#http/endpoint.js';
import { processDeps } from './wiring.js';

export const endpoint = endpointFactory(processDeps);
