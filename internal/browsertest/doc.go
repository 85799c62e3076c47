// Package browsertest drives the demo page and the browser client in a real
// Chromium (Debian's, headless, through chromedp) against a real Instant:
// embedded NATS, Centrifugo, the bridge and the token service. It has only
// tests; they fail, saying how to install Chromium, when it is missing.
package browsertest
