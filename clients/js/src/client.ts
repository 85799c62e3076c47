import { TokenService, TokenServiceError, identityOf, type TokenAnswer } from "./api";
import { Recent, matches, normalize } from "./normalize";
import type {
  Instant,
  InstantFilter,
  InstantIdentity,
  InstantOptions,
  InstantState,
  MessageHandler,
  StateHandler,
} from "./types";

// The parts of centrifuge-js the client uses, so that tests can give a fake.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
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

/** centrifuge-js's disconnected code for a connection token refused by getToken. */
const codeUnauthorized = 1;

/** Client is the Instant client: tokens from the token service, messages from Centrifugo. */
export class Client implements Instant {
  private readonly api: TokenService;
  private readonly handlers = new Set<{ filter: InstantFilter; handler: MessageHandler }>();
  private readonly stateHandlers = new Set<StateHandler>();
  private readonly recent: Recent;
  private current: InstantIdentity | null = null;
  private started: Promise<void> | null = null;
  private waiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  // gen counts connections: events of an older one are ignored.
  private gen = 0;
  private conn: CentrifugeLike | null = null;
  private subs: SubscriptionLike[] = [];
  private connected = false;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private attempts = 0;

  constructor(
    private readonly opts: InstantOptions,
    private readonly deps: Deps,
  ) {
    if (!opts || !opts.wsUrl) {
      throw new Error("createInstant: wsUrl is required (Centrifugo's websocket URL)");
    }
    const origin = (globalThis as { location?: { origin?: string } }).location?.origin;
    const base = (opts.tokenUrl ?? origin ?? "").replace(/\/+$/, "");
    const f = opts.fetch ?? globalThis.fetch;
    this.api = new TokenService({
      base,
      fetch: (input, init) => f(input, init),
      getAuthorization: opts.getAuthorization,
    });
    this.recent = new Recent(opts.dedupSize ?? 1000);
  }

  identity(): InstantIdentity | null {
    return this.current;
  }

  on(filter: InstantFilter, handler: MessageHandler): () => void {
    const h = { filter, handler };
    this.handlers.add(h);
    return () => {
      this.handlers.delete(h);
    };
  }

  onState(handler: StateHandler): () => void {
    this.stateHandlers.add(handler);
    return () => {
      this.stateHandlers.delete(handler);
    };
  }

  async login(username: string, password: string): Promise<InstantIdentity> {
    const a = await this.api.login(username, password);
    const id = identityOf(a);
    this.setIdentity(id);
    if (this.started) {
      void this.connect(a);
    }
    return id;
  }

  async logout(): Promise<void> {
    await this.api.logout();
    this.setIdentity(null);
    if (this.started) {
      void this.connect();
    }
  }

  async whoami(): Promise<InstantIdentity | null> {
    try {
      return this.setIdentity(identityOf(await this.api.getToken()));
    } catch (e) {
      if (e instanceof TokenServiceError && e.unauthenticated) {
        return this.setIdentity(null);
      }
      throw e;
    }
  }

  start(): Promise<void> {
    if (!this.started) {
      this.started = new Promise<void>((resolve, reject) => {
        this.waiter = { resolve, reject };
      });
      this.started.catch(() => {}); // a stop() before connecting is not an unhandled error
      void this.connect();
    }
    return this.started;
  }

  stop(): void {
    if (!this.started) {
      return;
    }
    this.gen++;
    clearTimeout(this.retry);
    this.teardown();
    this.waiter?.reject(new Error("stopped"));
    this.waiter = null;
    this.started = null;
    this.emit({ type: "disconnected", reason: "stopped" });
  }

  private emit(s: InstantState): void {
    for (const h of [...this.stateHandlers]) {
      try {
        h(s);
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    }
  }

  private setIdentity(id: InstantIdentity | null): InstantIdentity | null {
    if (JSON.stringify(id) !== JSON.stringify(this.current)) {
      this.current = id;
      this.emit({ type: "identity", identity: id });
    }
    return id;
  }

  private teardown(): void {
    const c = this.conn;
    this.conn = null;
    this.subs = [];
    this.connected = false;
    c?.disconnect();
  }

  /**
   * connect (re)connects as the current identity: with the given tokens
   * (a login's answer) or after fetching them. Not authenticated: waits
   * for a login. Token service unreachable: tries again with backoff.
   */
  private async connect(answer?: TokenAnswer): Promise<void> {
    const gen = ++this.gen;
    clearTimeout(this.retry);
    this.teardown();
    let a = answer;
    if (!a) {
      this.emit({ type: "connecting", reason: "get_token" });
      try {
        a = await this.api.getToken();
      } catch (e) {
        if (gen !== this.gen) {
          return;
        }
        const err = e as TokenServiceError;
        if (err instanceof TokenServiceError && err.unauthenticated) {
          this.setIdentity(null);
          this.emit({ type: "disconnected", reason: err.code });
          return;
        }
        const delay = this.backoff();
        this.emit({ type: "disconnected", reason: `${err.message}; retrying in ${delay} ms` });
        this.retry = setTimeout(() => {
          if (gen === this.gen) {
            void this.connect();
          }
        }, delay);
        return;
      }
      if (gen !== this.gen) {
        return;
      }
    }
    this.attempts = 0;
    this.setIdentity(identityOf(a));
    this.open(a, gen);
  }

  private backoff(): number {
    const min = this.opts.minReconnectDelay ?? 500;
    const max = this.opts.maxReconnectDelay ?? 20000;
    const d = Math.min(max, min * 2 ** Math.min(this.attempts++, 16));
    return Math.round(d / 2 + (Math.random() * d) / 2);
  }

  private asCentrifugeError(e: unknown): Error {
    if (e instanceof TokenServiceError && e.unauthenticated) {
      return new this.deps.UnauthorizedError(e.message);
    }
    return e as Error;
  }

  /** open connects to Centrifugo with the tokens of a and subscribes. */
  private open(a: TokenAnswer, gen: number): void {
    const live = () => gen === this.gen;
    const c = new this.deps.Centrifuge(this.opts.wsUrl, {
      token: a.ws_token,
      getToken: () => this.api.refresh().catch((e) => Promise.reject(this.asCentrifugeError(e))),
      name: "instant-js",
      minReconnectDelay: this.opts.minReconnectDelay ?? 500,
      maxReconnectDelay: this.opts.maxReconnectDelay ?? 20000,
      debug: this.opts.debug ?? false,
      ...(this.opts.websocket ? { websocket: this.opts.websocket } : {}),
    });
    this.conn = c;
    c.on("connecting", (ctx) => live() && this.emit({ type: "connecting", reason: String(ctx?.reason ?? "") }));
    c.on("connected", () => {
      if (live()) {
        this.connected = true;
        this.emit({ type: "connected" });
        this.checkReady();
      }
    });
    c.on("disconnected", (ctx) => {
      if (!live()) {
        return;
      }
      this.connected = false;
      this.emit({ type: "disconnected", reason: String(ctx?.reason ?? ""), code: ctx?.code });
      if (ctx?.code === codeUnauthorized && this.started) {
        // The session or upstream JWT ended: continue as whoever the token service says now.
        void this.connect();
      }
    });
    const wanted = this.opts.channels;
    for (const ch of a.channels) {
      if (wanted && !wanted.includes(ch.name)) {
        continue;
      }
      const sub = c.newSubscription(ch.name, {
        token: ch.token,
        getToken: (ctx: { channel: string }) =>
          this.api.subscribe(ctx.channel).catch((e) => Promise.reject(this.asCentrifugeError(e))),
        recoverable: true,
      });
      sub.on("publication", (ctx) => live() && this.deliver(ch.name, ctx.data));
      sub.on("subscribed", (ctx) => {
        if (!live()) {
          return;
        }
        this.emit({ type: "subscribed", channel: ch.name, recovered: !!ctx?.recovered });
        if (ctx?.wasRecovering && !ctx?.recovered) {
          this.emit({ type: "gap", channel: ch.name });
        }
        this.checkReady();
      });
      sub.on("unsubscribed", (ctx) => live() && this.emit({ type: "unsubscribed", channel: ch.name, reason: String(ctx?.reason ?? "") }));
      sub.on("error", (ctx) => live() && this.emit({ type: "error", channel: ch.name, message: String(ctx?.error?.message ?? ctx?.type ?? "error") }));
      this.subs.push(sub);
      sub.subscribe();
    }
    c.connect();
  }

  /** checkReady resolves start() once connected and subscribed to every channel. */
  private checkReady(): void {
    if (this.waiter && this.connected && this.subs.every((s) => s.state === "subscribed")) {
      this.waiter.resolve();
      this.waiter = null;
    }
  }

  private deliver(channel: string, data: unknown): void {
    const msg = normalize(channel, data);
    if (msg === null) {
      this.emit({ type: "error", channel, message: "a publication that is not an Instant message was dropped" });
      return;
    }
    if (msg.id !== null && this.recent.seen(channel + "\u0000" + msg.id)) {
      return;
    }
    for (const h of [...this.handlers]) {
      if (!matches(h.filter, msg)) {
        continue;
      }
      try {
        h.handler(msg);
      } catch (e) {
        setTimeout(() => {
          throw e;
        });
      }
    }
  }
}
