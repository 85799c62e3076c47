import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, TokenServiceError, identityOf, jwtClaims } from "../build/internals.mjs";

// A JWT-shaped token whose payload is claims (the client never verifies it).
function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256" })}.${b64(claims)}.sig`;
}

function answer(user, channels, csrf = "") {
  return {
    csrf_token: csrf,
    ws_token: jwt(user ? { sub: user, info: { username: user, site: "s" } } : { info: { site: "s" } }),
    channels: channels.map(([name, level]) => ({ name, level, token: `tok-${name}` })),
  };
}

class Unauthorized extends Error {}

class FakeSub {
  constructor(channel, options) {
    this.channel = channel;
    this.options = options;
    this.state = "unsubscribed";
    this.listeners = {};
  }
  on(ev, fn) {
    (this.listeners[ev] ??= []).push(fn);
    return this;
  }
  fire(ev, ctx) {
    if (ev === "subscribed") this.state = "subscribed";
    for (const fn of this.listeners[ev] ?? []) fn(ctx);
  }
  subscribe() {
    this.state = "subscribing";
  }
  unsubscribe() {
    this.state = "unsubscribed";
  }
}

// fakeCentrifuge records every client made.
function fakeCentrifuge() {
  const made = [];
  class FakeCentrifuge {
    constructor(endpoint, options) {
      this.endpoint = endpoint;
      this.options = options;
      this.listeners = {};
      this.subs = {};
      this.connected = false;
      this.disconnected = false;
      made.push(this);
    }
    on(ev, fn) {
      (this.listeners[ev] ??= []).push(fn);
      return this;
    }
    fire(ev, ctx = {}) {
      for (const fn of this.listeners[ev] ?? []) fn(ctx);
    }
    newSubscription(channel, options) {
      return (this.subs[channel] = new FakeSub(channel, options));
    }
    connect() {
      this.connected = true;
    }
    disconnect() {
      this.disconnected = true;
    }
    // up connects and subscribes everything, as Centrifugo would.
    up() {
      this.fire("connected", { client: "c", transport: "websocket" });
      for (const s of Object.values(this.subs)) s.fire("subscribed", { channel: s.channel, wasRecovering: false, recovered: false });
    }
  }
  return { made, FakeCentrifuge };
}

// fakeFetch answers the token service paths with routes[path](body, init).
function fakeFetch(routes) {
  const calls = [];
  const f = async (url, init) => {
    const path = new URL(url).pathname.replace(/^\/instant\/|\/$/g, "");
    const body = JSON.parse(init.body);
    calls.push({ url, path, body, init });
    const r = routes[path];
    if (!r) return new Response(JSON.stringify({ error: { code: "not_found", message: "no" } }), { status: 404 });
    const out = await r(body, init);
    if (out instanceof Response) return out;
    return new Response(JSON.stringify(out), { status: 200, headers: { "Content-Type": "application/json" } });
  };
  return { calls, fetch: f };
}

function denied(status, code) {
  return new Response(JSON.stringify({ error: { code, message: code } }), { status });
}

function setup(routes, opts = {}) {
  const cf = fakeCentrifuge();
  const ff = fakeFetch(routes);
  const client = new Client(
    { tokenUrl: "http://tokens.test/", wsUrl: "ws://cf.test/connection/websocket", fetch: ff.fetch, minReconnectDelay: 1, maxReconnectDelay: 5, ...opts },
    { Centrifuge: cf.FakeCentrifuge, UnauthorizedError: Unauthorized },
  );
  const states = [];
  client.onState((s) => states.push(s));
  return { client, cf, ff, states };
}

const tick = () => new Promise((r) => setTimeout(r, 0));
async function until(f, what) {
  for (let i = 0; i < 200; i++) {
    if (f()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`not true after 1s: ${what}`);
}

const aliceChannels = [["$group1", "groups"], ["$users", "users"], ["public", "public"]];

test("start gets tokens, connects with them and resolves once subscribed to every channel", async () => {
  const { client, cf, ff } = setup({ get_token: () => answer("alice", aliceChannels, "csrf1") });
  let done = false;
  const p = client.start().then(() => (done = true));
  assert.equal(client.start(), client.start(), "start() again returns the same promise");
  await until(() => cf.made.length === 1, "a Centrifuge client");
  const c = cf.made[0];
  assert.equal(c.endpoint, "ws://cf.test/connection/websocket");
  assert.equal(c.options.token, answer("alice", []).ws_token);
  assert.deepEqual(Object.keys(c.subs), ["$group1", "$users", "public"]);
  for (const [name] of aliceChannels) {
    assert.equal(c.subs[name].options.token, `tok-${name}`);
    assert.equal(c.subs[name].options.recoverable, true);
    assert.equal(c.subs[name].state, "subscribing");
  }
  assert.ok(c.connected);
  const call = ff.calls[0];
  assert.equal(call.url, "http://tokens.test/instant/get_token/");
  assert.equal(call.init.method, "POST");
  assert.equal(call.init.credentials, "include");
  assert.equal(call.init.headers["Content-Type"], "application/json");
  assert.equal(call.init.headers.Authorization, undefined);

  c.fire("connected");
  c.subs.$group1.fire("subscribed", {});
  await tick();
  assert.equal(done, false, "resolved before every channel was subscribed");
  c.up();
  await p;
  assert.deepEqual(client.identity(), { username: "alice", anonymous: false, channels: aliceChannels.map(([name, level]) => ({ name, level })) });
});

test("the channels option subscribes to a subset", async () => {
  const { client, cf } = setup({ get_token: () => answer("alice", aliceChannels) }, { channels: ["public", "$nope"] });
  client.start();
  await until(() => cf.made.length === 1, "a client");
  assert.deepEqual(Object.keys(cf.made[0].subs), ["public"]);
});

test("tokens are refreshed through /instant/refresh/ and /instant/subscribe/; a refusal is centrifuge's UnauthorizedError", async () => {
  let allowed = true;
  const { client, cf, ff } = setup({
    get_token: () => answer("alice", aliceChannels),
    refresh: () => (allowed ? { token: "fresh-conn" } : denied(401, "invalid_credentials")),
    subscribe: (body) => (allowed ? { token: `fresh-${body.channel}` } : denied(403, "forbidden_channel")),
  });
  client.start();
  await until(() => cf.made.length === 1, "a client");
  const c = cf.made[0];
  assert.equal(await c.options.getToken({}), "fresh-conn");
  assert.equal(await c.subs.$users.options.getToken({ channel: "$users" }), "fresh-$users");
  assert.deepEqual(ff.calls.find((x) => x.path === "subscribe").body, { channel: "$users" });
  allowed = false;
  await assert.rejects(c.options.getToken({}), Unauthorized);
  await assert.rejects(c.subs.$users.options.getToken({ channel: "$users" }), Unauthorized);
});

test("a token service that cannot be reached is retried; a 5xx on refresh stays a retryable error", async () => {
  let n = 0;
  const { client, cf } = setup({
    get_token: () => (++n < 3 ? denied(503, "not_ready") : answer("alice", aliceChannels)),
    refresh: () => denied(500, "internal_error"),
  });
  client.start();
  await until(() => cf.made.length === 1, "a client after retries");
  assert.equal(n, 3);
  const err = await cf.made[0].options.getToken({}).catch((e) => e);
  assert.ok(err instanceof TokenServiceError && !(err instanceof Unauthorized));
});

test("messages: both payload modes, filters, repeated ids dropped per channel, handlers removable", async () => {
  const { client, cf } = setup({ get_token: () => answer("alice", aliceChannels) });
  const all = [], users = [], important = [];
  client.on("*", (m) => all.push(m));
  const off = client.on("$users", (m) => users.push(m));
  client.on({ eventClass: "important" }, (m) => important.push(m));
  client.start();
  await until(() => cf.made.length === 1, "a client");
  const c = cf.made[0];
  c.up();
  const obj = { id: "e1", channel: "$users", site: "s", message: "hi", event_class: "important", ts: 7 };
  c.subs.$users.fire("publication", { data: obj });
  c.subs.$users.fire("publication", { data: obj }); // a repeat: dropped
  c.subs.public.fire("publication", { data: { ...obj, channel: "public" } }); // same id, other channel: kept
  c.subs.public.fire("publication", { data: JSON.stringify({ channel: "public", site: "s", message: "dj" }) });
  c.subs.public.fire("publication", { data: JSON.stringify({ channel: "public", site: "s", message: "dj" }) }); // no id: not deduplicated
  assert.deepEqual(all.map((m) => [m.channel, m.message, m.id]), [
    ["$users", "hi", "e1"], ["public", "hi", "e1"], ["public", "dj", null], ["public", "dj", null],
  ]);
  assert.equal(users.length, 1);
  assert.equal(important.length, 2);
  off();
  c.subs.$users.fire("publication", { data: { ...obj, id: "e2" } });
  assert.equal(users.length, 1, "a removed handler is not called");
  assert.equal(all.length, 5);
});

test("a gap is reported when Centrifugo could not recover a channel", async () => {
  const { client, cf, states } = setup({ get_token: () => answer("alice", aliceChannels) });
  client.start();
  await until(() => cf.made.length === 1, "a client");
  const c = cf.made[0];
  c.up();
  c.fire("disconnected", { code: 3, reason: "transport closed" });
  c.fire("connecting", { code: 3, reason: "transport closed" });
  c.fire("connected");
  c.subs.$users.fire("subscribed", { wasRecovering: true, recovered: true });
  c.subs.public.fire("subscribed", { wasRecovering: true, recovered: false });
  const got = states.filter((s) => s.type !== "subscribed" && s.type !== "identity");
  assert.deepEqual(got.slice(-5), [
    { type: "connected" },
    { type: "disconnected", reason: "transport closed", code: 3 },
    { type: "connecting", reason: "transport closed" },
    { type: "connected" },
    { type: "gap", channel: "public" },
  ]);
});

test("start before login waits for it; login and logout re-subscribe to the new user's channels", async () => {
  let session = null;
  const { client, cf, ff, states } = setup({
    get_token: () => (session === "bob" ? answer("bob", [["$staff", "staff"], ["public", "public"]], "c-bob") : denied(403, "not_authenticated")),
    login: (body) => {
      session = body.username;
      return answer(body.username, body.username === "bob" ? [["$staff", "staff"], ["public", "public"]] : aliceChannels, `c-${body.username}`);
    },
    logout: (_body, init) => {
      assert.equal(init.headers["X-CSRFToken"], `c-${session}`);
      session = null;
      return { response: "ok" };
    },
  });
  let done = false;
  const p = client.start().then(() => (done = true));
  await until(() => states.some((s) => s.type === "disconnected" && s.reason === "not_authenticated"), "not_authenticated");
  assert.equal(cf.made.length, 0);
  assert.equal(client.identity(), null);

  const id = await client.login("alice", "pw");
  assert.equal(id.username, "alice");
  await until(() => cf.made.length === 1, "a client after login");
  assert.equal(ff.calls.filter((x) => x.path === "get_token").length, 1, "login's answer is used, no get_token");
  cf.made[0].up();
  await p;
  assert.ok(done);

  await client.login("bob", "pw");
  await until(() => cf.made.length === 2, "a client for bob");
  assert.ok(cf.made[0].disconnected, "alice's connection closed");
  assert.deepEqual(Object.keys(cf.made[1].subs), ["$staff", "public"]);
  // Events of the old connection are ignored.
  const seen = [];
  client.on("*", (m) => seen.push(m));
  cf.made[0].subs.$group1.fire("publication", { data: { id: "x", message: "old" } });
  cf.made[1].subs.$staff.fire("publication", { data: { id: "y", message: "new" } });
  assert.deepEqual(seen.map((m) => m.message), ["new"]);

  await client.logout();
  await until(() => cf.made[1].disconnected, "bob's connection closed");
  await until(() => states.filter((s) => s.type === "disconnected" && s.reason === "not_authenticated").length === 2, "not_authenticated again");
  assert.equal(cf.made.length, 2, "no connection without a user");
  assert.equal(client.identity(), null);
});

test("anonymous after logout when the token service allows it", async () => {
  let user = "alice";
  const { client, cf } = setup({
    get_token: () => (user ? answer(user, aliceChannels, "c") : answer(null, [["public", "public"]])),
    logout: () => {
      user = null;
      return { response: "ok" };
    },
  });
  client.start();
  await until(() => cf.made.length === 1, "a client");
  await client.logout();
  await until(() => cf.made.length === 2, "an anonymous client");
  assert.deepEqual(Object.keys(cf.made[1].subs), ["public"]);
  assert.deepEqual(client.identity(), { username: null, anonymous: true, channels: [{ name: "public", level: "public" }] });
});

test("a connection refused as unauthorized asks the token service again", async () => {
  let n = 0;
  const { client, cf } = setup({ get_token: () => (++n === 1 ? answer("alice", aliceChannels) : answer(null, [["public", "public"]])) });
  client.start();
  await until(() => cf.made.length === 1, "a client");
  cf.made[0].fire("disconnected", { code: 1, reason: "unauthorized" });
  await until(() => cf.made.length === 2, "a new client");
  assert.equal(client.identity().anonymous, true);
});

test("getAuthorization sends a bearer token", async () => {
  const { client, ff } = setup({ get_token: () => answer("u-7", []) }, { getAuthorization: async () => "app.jwt" });
  await client.whoami();
  assert.equal(ff.calls[0].init.headers.Authorization, "Bearer app.jwt");
});

test("whoami: the identity without connecting, null when not authenticated", async () => {
  let ok = true;
  const { client, cf } = setup({ get_token: () => (ok ? answer("alice", aliceChannels) : denied(403, "not_authenticated")) });
  assert.equal((await client.whoami()).username, "alice");
  ok = false;
  assert.equal(await client.whoami(), null);
  assert.equal(cf.made.length, 0);
});

test("stop disconnects and rejects a pending start; start connects again", async () => {
  const { client, cf } = setup({ get_token: () => answer("alice", aliceChannels) });
  const p = client.start();
  await until(() => cf.made.length === 1, "a client");
  client.stop();
  await assert.rejects(p, /stopped/);
  assert.ok(cf.made[0].disconnected);
  client.start();
  await until(() => cf.made.length === 2, "a second client");
});

test("identityOf and jwtClaims read the connection token", () => {
  assert.deepEqual(jwtClaims(jwt({ sub: "42", info: { username: "ålice" } })), { sub: "42", info: { username: "ålice" } });
  assert.equal(jwtClaims("garbage"), null);
  assert.deepEqual(identityOf(answer(null, [["public", "public"]])), { username: null, anonymous: true, channels: [{ name: "public", level: "public" }] });
});

test("createInstant needs wsUrl", () => {
  assert.throws(() => new Client({}, { Centrifuge: class {}, UnauthorizedError: Error }), /wsUrl/);
});
