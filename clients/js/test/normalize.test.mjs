import assert from "node:assert/strict";
import { test } from "node:test";

import { Recent, matches, normalize } from "../build/internals.mjs";

const now = () => 1234;

test("object mode: the bridge's object, fields renamed, empty ones null", () => {
  const data = { id: "01KB", channel: "$users", site: "s", message: "hi", data: { k: "v" }, event_class: "important", bucket: "b", ts: 99 };
  assert.deepEqual(normalize("$users", data, now), {
    id: "01KB", channel: "$users", site: "s", message: "hi", data: { k: "v" }, eventClass: "important", bucket: "b", ts: 99,
  });
  assert.deepEqual(normalize("public", { id: "x", channel: "public", site: "s", data: { a: 1 }, ts: 5 }, now), {
    id: "x", channel: "public", site: "s", message: null, data: { a: 1 }, eventClass: null, bucket: null, ts: 5,
  });
});

test("django mode: a JSON string without id and ts", () => {
  const data = JSON.stringify({ channel: "$users", site: "s", message: "hi", data: { k: "v" }, event_class: "important", bucket: "b" });
  assert.deepEqual(normalize("$users", data, now), {
    id: null, channel: "$users", site: "s", message: "hi", data: { k: "v" }, eventClass: "important", bucket: "b", ts: 1234,
  });
});

test("an envelope to several channels is reported on the channel it arrived on", () => {
  const m = normalize("$b", { id: "x", channels: ["$a", "$b"], site: "s", message: "m", ts: 1 }, now);
  assert.equal(m.channel, "$b");
});

test("what is not an Instant message is refused", () => {
  for (const d of ["not json", "[1]", "42", 42, null, [1, 2], JSON.stringify("str")]) {
    assert.equal(normalize("c", d, now), null, `data ${JSON.stringify(d)}`);
  }
});

test("wrong field types become null rather than passing through", () => {
  const m = normalize("c", { id: 7, message: { x: 1 }, data: [1], event_class: 3, ts: "soon" }, now);
  assert.deepEqual(m, { id: null, channel: "c", site: null, message: null, data: null, eventClass: null, bucket: null, ts: 1234 });
});

test("filters", () => {
  const m = { id: "1", channel: "$users", site: "s", message: "m", data: null, eventClass: "important", bucket: null, ts: 0 };
  const cases = [
    ["*", true],
    ["$users", true],
    ["public", false],
    [{}, true],
    [{ channel: "$users" }, true],
    [{ channel: "public" }, false],
    [{ eventClass: "important" }, true],
    [{ eventClass: "other" }, false],
    [{ channel: "$users", eventClass: "important" }, true],
    [{ channel: "$users", eventClass: "other" }, false],
  ];
  for (const [f, want] of cases) {
    assert.equal(matches(f, m), want, `filter ${JSON.stringify(f)}`);
  }
});

test("Recent remembers the last max keys only", () => {
  const r = new Recent(3);
  assert.equal(r.seen("a"), false);
  assert.equal(r.seen("a"), true);
  r.seen("b");
  r.seen("c");
  r.seen("d"); // forgets a
  assert.equal(r.size, 3);
  assert.equal(r.seen("a"), false);
  assert.equal(r.seen("d"), true);
  const big = new Recent(1000);
  for (let i = 0; i < 100000; i++) big.seen(String(i));
  assert.equal(big.size, 1000);
});
