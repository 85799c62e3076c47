// The demo page: everything goes through the Instant browser client
// (/instant/client.js); /demo/config.json says where Centrifugo is.
(async function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const cfg = await fetch("/demo/config.json").then((r) => r.json());
  $("site").textContent = "site " + cfg.site;

  const instant = Instant.createInstant({ wsUrl: cfg.wsUrl });
  window.instant = instant; // to play with in the console
  let started = false;
  function start() {
    if (!started) {
      started = true;
      instant.start().catch(() => {});
    }
    showIdentity(instant.identity());
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  // The channels the client is subscribed to now.
  const live = new Set();

  function showIdentity(id) {
    const user = id && !id.anonymous;
    $("user").hidden = !user && !(id && started);
    $("who").textContent = id ? (id.anonymous ? "anonymous" : id.username) : "";
    $("logout").hidden = !user;
    $("login-form").hidden = user || !cfg.login;
    $("anonymous").hidden = !cfg.anonymous || started;
    const list = $("channels");
    list.replaceChildren();
    const chans = id ? id.channels : [];
    for (const c of chans) {
      const li = el("li");
      li.dataset.channel = c.name;
      li.dataset.state = live.has(c.name) ? "subscribed" : "pending";
      li.title = live.has(c.name) ? "subscribed" : "not subscribed";
      li.append(el("span", "name", c.name), el("span", "level " + c.level, c.level));
      list.append(li);
    }
    if (chans.length === 0) list.append(el("li", "none", id ? "no channels" : "log in to see them"));
    const target = chans.find((c) => c.level !== "public") || chans[0] || { name: "public" };
    const env = JSON.stringify({ channel: target.name, message: "hello", event_class: "demo" });
    $("command").textContent = "nats req instant.publish '" + env + "'";
  }

  function status(state, reason) {
    const s = $("status");
    s.dataset.state = state;
    s.textContent = reason && state !== "connected" ? state + " (" + reason + ")" : state;
  }

  const feed = $("feed");
  function addRow(cells, cls, channel) {
    const tr = el("tr", cls);
    if (channel) tr.dataset.channel = channel;
    for (const c of cells) tr.append(c);
    feed.prepend(tr);
    while (feed.rows.length > 200) feed.deleteRow(-1);
    $("empty").hidden = true;
  }

  instant.on("*", (m) => {
    const time = new Date(m.ts).toLocaleTimeString([], { hour12: false }) + "." + String(m.ts % 1000).padStart(3, "0");
    const body = el("td", "body", m.message);
    if (m.data) body.append(el("span", "data", JSON.stringify(m.data)));
    addRow([el("td", "time", time), el("td", "channel", m.channel), el("td", "class", m.eventClass || ""), el("td", "site", m.site || ""), body], "new", m.channel);
  });

  instant.onState((s) => {
    switch (s.type) {
      case "identity":
        live.clear();
        showIdentity(s.identity);
        break;
      case "subscribed":
      case "unsubscribed":
        if (s.type === "subscribed") live.add(s.channel);
        else live.delete(s.channel);
        showIdentity(instant.identity());
        break;
      case "connecting":
      case "connected":
      case "disconnected":
        status(s.type, s.reason);
        break;
      case "gap": {
        const td = el("td", null, "Messages missed on " + s.channel + " while disconnected could not be recovered.");
        td.colSpan = 5;
        addRow([td], "note");
        break;
      }
      case "error":
        console.warn("instant:", s.channel || "", s.message);
        break;
    }
  });

  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("login-error").textContent = "";
    try {
      await instant.login($("username").value, $("password").value);
      $("password").value = "";
      start();
    } catch (err) {
      $("login-error").textContent = err.message;
    }
  });
  $("anonymous").addEventListener("click", start);
  $("logout").addEventListener("click", () => instant.logout().catch((err) => ($("login-error").textContent = err.message)));

  // A session from an earlier visit: go live at once.
  const who = await instant.whoami().catch(() => null);
  if (who && !who.anonymous) start();
  else showIdentity(null);
  document.body.dataset.ready = "true";
})();
