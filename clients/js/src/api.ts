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
export class TokenServiceError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "TokenServiceError";
  }

  /** Whether the caller is not (or no longer) authenticated: retrying will not help. */
  get unauthenticated(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

export interface TokenServiceOptions {
  base: string;
  fetch: typeof fetch;
  getAuthorization?: () => string | null | undefined | Promise<string | null | undefined>;
}

/** TokenService calls the token service's /instant/ endpoints. */
export class TokenService {
  private csrf = "";

  constructor(private readonly opts: TokenServiceOptions) {}

  private async call(path: string, body?: unknown, extra?: Record<string, string>): Promise<unknown> {
    const headers: Record<string, string> = { "Content-Type": "application/json", ...extra };
    const auth = this.opts.getAuthorization ? await this.opts.getAuthorization() : null;
    if (auth) {
      headers.Authorization = /^bearer /i.test(auth) ? auth : `Bearer ${auth}`;
    }
    let resp: Response;
    try {
      resp = await this.opts.fetch(`${this.opts.base}/instant/${path}/`, {
        method: "POST",
        mode: "cors",
        credentials: "include",
        headers,
        body: JSON.stringify(body ?? {}),
      });
    } catch (err) {
      throw new TokenServiceError(0, "unreachable", `${path}: ${(err as Error).message ?? err}`);
    }
    let answer: unknown = null;
    try {
      answer = await resp.json();
    } catch {
      // not JSON: reported below by status
    }
    if (!resp.ok) {
      const e = (answer as { error?: { code?: string; message?: string } } | null)?.error;
      throw new TokenServiceError(resp.status, e?.code ?? "http_" + resp.status, `${path}: ${e?.message ?? resp.statusText}`);
    }
    return answer;
  }

  private tokens(answer: unknown): TokenAnswer {
    const a = answer as TokenAnswer;
    if (!a || typeof a.ws_token !== "string" || !Array.isArray(a.channels)) {
      throw new TokenServiceError(200, "bad_answer", "unexpected answer from the token service");
    }
    if (a.csrf_token) {
      this.csrf = a.csrf_token;
    }
    return a;
  }

  /** get_token: tokens for the current identity. */
  async getToken(): Promise<TokenAnswer> {
    return this.tokens(await this.call("get_token"));
  }

  /** login with the users file; the answer sets the session cookie. */
  async login(username: string, password: string): Promise<TokenAnswer> {
    return this.tokens(await this.call("login", { username, password }));
  }

  /** logout ends the session (needs the csrf token of login or get_token). */
  async logout(): Promise<void> {
    await this.call("logout", {}, this.csrf ? { "X-CSRFToken": this.csrf } : undefined);
    this.csrf = "";
  }

  /** refresh: a fresh connection token. */
  async refresh(): Promise<string> {
    return tokenOf(await this.call("refresh"));
  }

  /** subscribe: a fresh subscription token for one channel. */
  async subscribe(channel: string): Promise<string> {
    return tokenOf(await this.call("subscribe", { channel }));
  }
}

function tokenOf(answer: unknown): string {
  const t = (answer as { token?: unknown } | null)?.token;
  if (typeof t !== "string" || t === "") {
    throw new TokenServiceError(200, "bad_answer", "unexpected answer from the token service");
  }
  return t;
}

/** identityOf reads the user from a token answer (the connection token's sub and info). */
export function identityOf(a: TokenAnswer): InstantIdentity {
  const claims = jwtClaims(a.ws_token);
  const info = (claims?.info ?? {}) as { username?: unknown };
  const sub = typeof claims?.sub === "string" ? claims.sub : "";
  const username = typeof info.username === "string" && info.username !== "" ? info.username : sub || null;
  return {
    username,
    anonymous: sub === "",
    channels: a.channels.map((c) => ({ name: c.name, level: c.level })),
  };
}

/** jwtClaims decodes a JWT's payload without verifying it (the client only displays it). */
export function jwtClaims(token: string): Record<string, unknown> | null {
  const part = token.split(".")[1];
  if (!part) {
    return null;
  }
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (part.length % 4)) % 4);
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}
