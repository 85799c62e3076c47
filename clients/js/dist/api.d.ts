import type { InstantChannel, InstantIdentity } from "./types";
/** A channel of a token answer, with its subscription token. */
export interface ChannelToken extends InstantChannel {
    token: string;
}
/** The answer of login and get_token (django-instant's shape). */
export interface TokenAnswer {
    csrf_token: string;
    ws_token: string;
    channels: ChannelToken[];
}
/**
 * TokenServiceError is a failed token service call: the HTTP status (0 when
 * the service could not be reached) and the answer's error code.
 */
export declare class TokenServiceError extends Error {
    readonly status: number;
    readonly code: string;
    constructor(status: number, code: string, message: string);
    /** Whether the caller is not (or no longer) authenticated: retrying will not help. */
    get unauthenticated(): boolean;
}
export interface TokenServiceOptions {
    base: string;
    fetch: typeof fetch;
    getAuthorization?: () => string | null | undefined | Promise<string | null | undefined>;
}
/** TokenService calls the token service's /instant/ endpoints. */
export declare class TokenService {
    private readonly opts;
    private csrf;
    constructor(opts: TokenServiceOptions);
    private call;
    private tokens;
    /** get_token: tokens for the current identity. */
    getToken(): Promise<TokenAnswer>;
    /** login with the users file; the answer sets the session cookie. */
    login(username: string, password: string): Promise<TokenAnswer>;
    /** logout ends the session (needs the csrf token of login or get_token). */
    logout(): Promise<void>;
    /** refresh: a fresh connection token. */
    refresh(): Promise<string>;
    /** subscribe: a fresh subscription token for one channel. */
    subscribe(channel: string): Promise<string>;
}
/** identityOf reads the user from a token answer (the connection token's sub and info). */
export declare function identityOf(a: TokenAnswer): InstantIdentity;
/** jwtClaims decodes a JWT's payload without verifying it (the client only displays it). */
export declare function jwtClaims(token: string): Record<string, unknown> | null;
