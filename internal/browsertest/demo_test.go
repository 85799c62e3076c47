package browsertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"github.com/instant-go/instant/internal/bridge"
	"github.com/instant-go/instant/internal/fullstack"
	"github.com/instant-go/instant/internal/tokensvc"
)

// explainJS describes the demo page's state for failure messages.
const explainJS = `"status: " + document.getElementById("status").textContent +
	" | channels: " + [...document.querySelectorAll("#channels li")].map(li => li.textContent + "/" + (li.dataset.state || "")).join(", ") +
	" | login error: " + document.getElementById("login-error").textContent +
	" | feed: " + [...document.querySelectorAll("#feed tr")].map(tr => tr.textContent).join(" / ")`

// feedRow is one row of the demo page's live feed.
type feedRow struct {
	Time    string `json:"time"`
	Channel string `json:"channel"`
	Class   string `json:"class"`
	Site    string `json:"site"`
	Body    string `json:"body"`
}

const feedJS = `[...document.querySelectorAll("#feed tr[data-channel]")].map(tr => ({
	time: tr.cells[0].textContent, channel: tr.cells[1].textContent, class: tr.cells[2].textContent,
	site: tr.cells[3].textContent, body: tr.cells[4].textContent}))`

// demo is the demo page open in a tab, against a running Instant.
type demo struct {
	t   *testing.T
	in  *fullstack.Instant
	tab context.Context
	nc  *nats.Conn
}

func openDemo(t *testing.T, browser context.Context, in *fullstack.Instant) *demo {
	d := &demo{t: t, in: in, tab: newTab(t, browser), nc: in.NATS.Connect(t)}
	do(t, d.tab, "open the demo page", chromedp.Navigate(in.TokenURL()+"/"))
	waitJS(t, d.tab, 10*time.Second, "demo page ready", `document.body.dataset.ready === "true"`, explainJS)
	return d
}

// login logs in with the page's form and waits until the page is
// subscribed to exactly want.
func (d *demo) login(user string, want ...string) {
	d.t.Helper()
	do(d.t, d.tab, "log in as "+user,
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SetValue(chromedp.ID("username"), user),
		chromedp.SetValue(chromedp.ID("password"), fullstack.DemoPassword),
		chromedp.Click(chromedp.ID("login")),
	)
	d.waitSubscribed(want...)
	if who := eval[string](d.t, d.tab, `document.getElementById("who").textContent`); who != user {
		d.t.Errorf("page says logged in as %q, want %q", who, user)
	}
}

func (d *demo) waitSubscribed(want ...string) {
	d.t.Helper()
	w, _ := json.Marshal(want)
	js := fmt.Sprintf(`(() => {
		const want = %s;
		const lis = [...document.querySelectorAll("#channels li[data-channel]")];
		return document.getElementById("status").dataset.state === "connected" && lis.length === want.length &&
			lis.every(li => want.includes(li.dataset.channel) && li.dataset.state === "subscribed");
	})()`, w)
	waitJS(d.t, d.tab, 10*time.Second, fmt.Sprintf("subscribed to exactly %v", want), js, explainJS)
}

// levels are the page's channels with the levels it shows.
func (d *demo) levels() map[string]string {
	d.t.Helper()
	pairs := eval[[][]string](d.t, d.tab, `[...document.querySelectorAll("#channels li[data-channel]")].map(li => [li.dataset.channel, li.querySelector(".level").textContent])`)
	out := map[string]string{}
	for _, p := range pairs {
		out[p[0]] = p[1]
	}
	return out
}

// publish sends an envelope through the bridge (ok receipt required).
func (d *demo) publish(channel, message, eventClass, data string) {
	d.t.Helper()
	d.in.Publish(d.t, d.nc, fmt.Sprintf(`{"channel":%q,"message":%q,"event_class":%q,"data":%s}`, channel, message, eventClass, data))
}

// waitRow waits until the feed shows a message containing text.
func (d *demo) waitRow(text string) {
	d.t.Helper()
	q, _ := json.Marshal(text)
	waitJS(d.t, d.tab, 10*time.Second, "feed shows "+text,
		fmt.Sprintf(`[...document.querySelectorAll("#feed tr[data-channel]")].some(tr => tr.cells[4].textContent.includes(%s))`, q), explainJS)
}

func (d *demo) feed() []feedRow {
	d.t.Helper()
	return eval[[]feedRow](d.t, d.tab, feedJS)
}

// TestDemoPage: the demo page in a real browser, in both payload modes and
// with tokens that expire while the page is open.
func TestDemoPage(t *testing.T) {
	browser := startBrowser(t)
	for _, mode := range []string{"object", "django"} {
		t.Run(mode, func(t *testing.T) {
			in := fullstack.StartInstant(t, fullstack.InstantOptions{
				Bridge:       func(c *bridge.Config) { c.PayloadMode = mode },
				TokenService: func(c *tokensvc.Config) { c.Demo = true },
			})
			levelsAndVisibility(t, openDemo(t, browser, in), mode)
		})
	}
	t.Run("anonymous", func(t *testing.T) {
		in := fullstack.StartInstant(t, fullstack.InstantOptions{
			TokenService: func(c *tokensvc.Config) { c.Demo, c.Anonymous = true, true },
		})
		d := openDemo(t, browser, in)
		do(t, d.tab, "continue anonymously", chromedp.Click(chromedp.ID("anonymous")))
		d.waitSubscribed("public")
		d.publish("$users", "for users only", "secret", `{}`)
		d.publish("public", "hello anonymous", "greeting", `{}`)
		d.waitRow("hello anonymous")
		if rows := d.feed(); len(rows) != 1 {
			t.Errorf("an anonymous visitor sees %+v, want only the public message", rows)
		}
		// Logging in from there switches to alice's channels.
		d.login("alice", "$group1", "$users", "public")
	})
	t.Run("short-lived tokens", func(t *testing.T) {
		in := fullstack.StartInstant(t, fullstack.InstantOptions{
			TokenService: func(c *tokensvc.Config) {
				c.Demo = true
				c.TokenTTL, c.SubscriptionTokenTTL = 2*time.Second, 2*time.Second
			},
		})
		refreshesTokens(t, openDemo(t, browser, in))
	})
}

// levelsAndVisibility: alice (group1) sees public, $users and $group1 but
// not $staff; after logging out, bob (staff) sees $staff.
func levelsAndVisibility(t *testing.T, d *demo, mode string) {
	if vis := eval[bool](t, d.tab, `!document.getElementById("anonymous").hidden`); vis {
		t.Error(`"continue anonymously" is offered while anonymous access is off`)
	}
	d.login("alice", "$group1", "$users", "public")
	if got, want := d.levels(), map[string]string{"$group1": "groups", "$users": "users", "public": "public"}; !mapsEqual(got, want) {
		t.Errorf("channels shown: %v, want %v", got, want)
	}
	cmd := eval[string](t, d.tab, `document.getElementById("command").textContent`)
	if !strings.HasPrefix(cmd, "nats req instant.publish '{") {
		t.Errorf("the page's command to try is %q, want a nats req instant.publish", cmd)
	}

	// $staff first: once the later envelopes are shown, its publication
	// (accepted by Centrifugo before them) would have been too.
	d.publish("$staff", "for staff only ("+mode+")", "secret", `{"level":"staff"}`)
	d.publish("public", "Deploy 1.4.2 finished", "deploy", `{"version":"1.4.2","mode":"`+mode+`"}`)
	d.publish("$users", "New comment on your post", "comment", `{"post":17}`)
	d.publish("$group1", "group1: standup in 5 minutes", "reminder", `{"room":"B"}`)
	for _, m := range []string{"Deploy 1.4.2 finished", "New comment on your post", "group1: standup in 5 minutes"} {
		d.waitRow(m)
	}
	d.publish("public", "Order 42 shipped", "order", `{"order":42,"status":"shipped"}`)
	d.waitRow("Order 42 shipped")
	rows := d.feed()
	if len(rows) != 4 {
		t.Errorf("feed has %d rows, want 4: %+v", len(rows), rows)
	}
	for _, r := range rows {
		if r.Channel == "$staff" || strings.Contains(r.Body, "staff only") {
			t.Errorf("alice was shown a $staff message: %+v", r)
		}
	}
	want := feedRow{Channel: "public", Class: "order", Site: "testsite", Body: `Order 42 shipped{"order":42,"status":"shipped"}`}
	if got := rows[0]; got.Channel != want.Channel || got.Class != want.Class || got.Site != want.Site || got.Body != want.Body ||
		!regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3}$`).MatchString(got.Time) {
		t.Errorf("newest row = %+v, want %+v with an hh:mm:ss.mmm time", got, want)
	}
	// A still picture: the rows' arrival highlight ends, and the window
	// fits the page.
	eval[bool](t, d.tab, `(document.querySelectorAll("#feed tr").forEach((tr) => tr.classList.remove("new")), true)`)
	do(t, d.tab, "resize", chromedp.EmulateViewport(1200, 600))
	png := screenshot(t, d.tab)
	if out := os.Getenv("INSTANT_SCREENSHOT_OUT"); out != "" && mode == "object" {
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatalf("INSTANT_SCREENSHOT_OUT: %v", err)
		}
		t.Logf("wrote %s", out)
	}

	do(t, d.tab, "log out", chromedp.Click(chromedp.ID("logout")))
	waitJS(t, d.tab, 10*time.Second, "logged out", `!document.getElementById("login-form").hidden && document.getElementById("status").dataset.state === "disconnected"`, explainJS)
	d.login("bob", "$staff", "$users", "public")
	if got := d.levels()["$staff"]; got != "staff" {
		t.Errorf("bob's $staff level shown as %q, want staff", got)
	}
	d.publish("$staff", "bob sees staff ("+mode+")", "secret", `{"level":"staff"}`)
	d.waitRow("bob sees staff (" + mode + ")")
}

// refreshesTokens: with tokens of 2 seconds the page refreshes them through
// the token service and stays subscribed: a message published after they
// expired arrives, and the page saw no disconnect or unsubscribe.
func refreshesTokens(t *testing.T, d *demo) {
	d.login("alice", "$group1", "$users", "public")
	eval[bool](t, d.tab, `(window.states = [], instant.onState(s => states.push(s)), true)`)
	before := tokenRequests(t, d.in)
	time.Sleep(5 * time.Second) // two and a half lifetimes
	d.publish("$users", "after expiry", "test", `{}`)
	d.publish("$group1", "after expiry too", "test", `{}`)
	d.waitRow("after expiry")
	d.waitRow("after expiry too")
	after := tokenRequests(t, d.in)
	// (Centrifugo would keep a connection 25s past its token's expiry,
	// so the requests, not only the delivery, show that tokens were
	// refreshed; at least one per token, to stay robust on a busy machine.)
	if n := after["refresh"] - before["refresh"]; n < 1 {
		t.Errorf("%d connection token refreshes (/instant/refresh/) in 5s, want some with a 2s lifetime", n)
	}
	if n := after["subscribe"] - before["subscribe"]; n < 3 {
		t.Errorf("%d subscription token refreshes (/instant/subscribe/) in 5s, want at least one per channel (3) with a 2s lifetime", n)
	}
	states := eval[[]map[string]any](t, d.tab, `states`)
	for _, s := range states {
		if s["type"] == "disconnected" || s["type"] == "unsubscribed" || s["type"] == "connecting" {
			t.Errorf("the page lost its connection or a channel while tokens were refreshed: %v", states)
			break
		}
	}
}

// tokenRequests reads the token service's successful requests by route
// from /metrics.
func tokenRequests(t *testing.T, in *fullstack.Instant) map[string]int {
	t.Helper()
	resp, err := http.Get(in.TokenURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]int{}
	re := regexp.MustCompile(`(?m)^instant_tokensvc_requests_total\{code="200",route="([a-z_]+)"\} (\d+)$`)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	return !slices.ContainsFunc(keys, func(k string) bool { return a[k] != b[k] })
}
