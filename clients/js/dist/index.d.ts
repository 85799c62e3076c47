import type { Instant, InstantOptions } from "./types";
export type { Instant, InstantChannel, InstantFilter, InstantIdentity, InstantMessage, InstantOptions, InstantState, MessageHandler, StateHandler, } from "./types";
export { TokenServiceError } from "./api";
/** The client's version. */
export declare const version = "0.1.0";
/** createInstant makes a client; nothing is fetched or connected before start(), login() or whoami(). */
export declare function createInstant(options: InstantOptions): Instant;
