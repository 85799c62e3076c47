import type { Instant, InstantFilter, InstantIdentity, InstantOptions, MessageHandler, StateHandler } from "./types";
type Ctx = any;
export interface SubscriptionLike {
    readonly state: string;
    on(event: string, fn: (ctx: Ctx) => void): unknown;
    subscribe(): void;
    unsubscribe(): void;
}
export interface CentrifugeLike {
    on(event: string, fn: (ctx: Ctx) => void): unknown;
    newSubscription(channel: string, options: Record<string, unknown>): SubscriptionLike;
    connect(): void;
    disconnect(): void;
}
export interface Deps {
    Centrifuge: new (endpoint: string, options: Record<string, unknown>) => CentrifugeLike;
    UnauthorizedError: new (message: string) => Error;
}
/** Client is the Instant client: tokens from the token service, messages from Centrifugo. */
export declare class Client implements Instant {
    private readonly opts;
    private readonly deps;
    private readonly api;
    private readonly handlers;
    private readonly stateHandlers;
    private readonly recent;
    private current;
    private started;
    private waiter;
    private gen;
    private conn;
    private subs;
    private connected;
    private retry;
    private attempts;
    constructor(opts: InstantOptions, deps: Deps);
    identity(): InstantIdentity | null;
    on(filter: InstantFilter, handler: MessageHandler): () => void;
    onState(handler: StateHandler): () => void;
    login(username: string, password: string): Promise<InstantIdentity>;
    logout(): Promise<void>;
    whoami(): Promise<InstantIdentity | null>;
    start(): Promise<void>;
    stop(): void;
    private emit;
    private setIdentity;
    private teardown;
    /**
     * connect (re)connects as the current identity: with the given tokens
     * (a login's answer) or after fetching them. Not authenticated: waits
     * for a login. Token service unreachable: tries again with backoff.
     */
    private connect;
    private backoff;
    private asCentrifugeError;
    /** open connects to Centrifugo with the tokens of a and subscribes. */
    private open;
    /** checkReady resolves start() once connected and subscribed to every channel. */
    private checkReady;
    private deliver;
}
export {};
