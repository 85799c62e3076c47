package browsertest_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumInstall is how CI (.ci/run) and developers get the browser.
const chromiumInstall = "apt-get install -y chromium"

// chromiumPath is Debian's Chromium, or $INSTANT_CHROMIUM. A missing
// browser fails the test: browser tests never skip.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("INSTANT_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		t.Fatalf("the browser tests need Chromium at %s; install it with: %s (or set INSTANT_CHROMIUM to the browser's path)", p, chromiumInstall)
	}
	return p
}

// startBrowser starts one headless Chromium, with a fresh profile, for the
// whole test; it is stopped at cleanup.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 820),
	)
	bctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// newTab opens a tab in a browser context of its own (its own cookies),
// closed at cleanup. The page's console and exceptions go to the test log.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			t.Logf("browser console %s: %s", m.Type, m)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ctx
}

// do runs steps with a timeout, failing the test with what.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its value.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitJS polls a JavaScript expression until it is true; on timeout it
// fails with what and the value of explain.
func waitJS(t *testing.T, ctx context.Context, d time.Duration, what, js, explain string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		got := "?"
		if explain != "" {
			ectx, ecancel := context.WithTimeout(ctx, 5*time.Second)
			got, _ = chromedp.Run(ectx, chromedp.Evaluate[string](explain))
			ecancel()
		}
		t.Fatalf("%s: not after %v (%v); page: %s", what, d, err, got)
	}
}

// screenshot saves the page as test artifact: in $INSTANT_ARTIFACTS_DIR, or
// a directory under the system's temporary directory; never in the
// repository. It returns the PNG.
func screenshot(t *testing.T, ctx context.Context) []byte {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(tctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("INSTANT_ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "instant-test-artifacts")
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(strings.ReplaceAll(t.Name(), "/", "-"), "_") + ".png"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	t.Logf("screenshot: %s", p)
	return png
}
