// Public types of the Instant browser client.

/** Options of createInstant. */
export interface InstantOptions {
  /**
   * Origin of the token service, e.g. "https://tokens.example.com"; the
   * client appends /instant/…. Default: the page's origin.
   */
  tokenUrl?: string;
  /** Centrifugo's websocket URL, e.g. "wss://rt.example.com/connection/websocket". */
  wsUrl: string;
  /**
   * Only these channels, of those the user is given (default: every channel
   * the token service gives the user).
   */
  channels?: string[];
  /**
   * Returns a bearer token for the upstream-JWT identity source, sent as
   * Authorization on every token service call. Without it the session
   * cookie is sent (credentials: "include").
   */
  getAuthorization?: () => string | null | undefined | Promise<string | null | undefined>;
  /** Remember this many recent message ids to drop repeats (default 1000). */
  dedupSize?: number;
  /** Shortest and longest delay between reconnect attempts, ms (default 500 and 20000). */
  minReconnectDelay?: number;
  maxReconnectDelay?: number;
  /** The fetch to call the token service with (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /** WebSocket constructor, for environments without a global one (Node.js). */
  websocket?: unknown;
  /** Log centrifuge-js debug output to the console. */
  debug?: boolean;
}

/**
 * One message as a handler receives it, whatever the bridge's payload mode.
 * In django mode the bridge sends no id and no ts: id is then null and ts
 * the time the browser received the message.
 */
export interface InstantMessage {
  /** The envelope's id (producer's or bridge-assigned); null in django mode. */
  id: string | null;
  /** The channel the message arrived on. */
  channel: string;
  site: string | null;
  message: string | null;
  data: Record<string, unknown> | null;
  eventClass: string | null;
  bucket: string | null;
  /** Unix milliseconds: when the bridge received the envelope (django mode: when the browser did). */
  ts: number;
}

/** Which messages a handler wants: "*", a channel name, or both parts optional. */
export type InstantFilter = "*" | string | { channel?: string; eventClass?: string };

/** A channel the user is given, with its level (public, users, groups, staff, superuser). */
export interface InstantChannel {
  name: string;
  level: string;
}

/** Who the token service says the user is. */
export interface InstantIdentity {
  /** null for an anonymous user. */
  username: string | null;
  anonymous: boolean;
  /** Every channel the user may subscribe to (before the channels option). */
  channels: InstantChannel[];
}

/** What onState handlers receive. */
export type InstantState =
  | { type: "connecting"; reason: string }
  | { type: "connected" }
  | { type: "disconnected"; reason: string; code?: number }
  | { type: "identity"; identity: InstantIdentity | null }
  | { type: "subscribed"; channel: string; recovered: boolean }
  | { type: "unsubscribed"; channel: string; reason: string }
  /** Centrifugo could not recover what this channel missed while disconnected: reload its data. */
  | { type: "gap"; channel: string }
  | { type: "error"; channel?: string; message: string };

export type MessageHandler = (msg: InstantMessage) => void;
export type StateHandler = (state: InstantState) => void;

/** The client createInstant returns. */
export interface Instant {
  /** Log in with the users file (session cookie); re-subscribes when started. */
  login(username: string, password: string): Promise<InstantIdentity>;
  /** Log out; re-subscribes to what is left (anonymous channels, or nothing) when started. */
  logout(): Promise<void>;
  /** Who the token service says the caller is, without connecting; null when not authenticated. */
  whoami(): Promise<InstantIdentity | null>;
  /**
   * Connect and subscribe. Resolves once connected and subscribed to every
   * channel; calling it again returns the same promise. When the caller is
   * not authenticated it stays pending until a login succeeds.
   */
  start(): Promise<void>;
  /** Disconnect and forget the subscriptions (start() connects again). */
  stop(): void;
  /** Call handler for the messages that match filter; returns a function that removes it. */
  on(filter: InstantFilter, handler: MessageHandler): () => void;
  /** Call handler on state changes; returns a function that removes it. */
  onState(handler: StateHandler): () => void;
  /** The current identity, null before start/login/whoami or when not authenticated. */
  identity(): InstantIdentity | null;
}
