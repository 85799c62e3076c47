//go:build pprof

package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux only
	"os"
)

// Built with -tags pprof (never in a release build), the bridge serves
// Go's profiler on INSTANT_PPROF_ADDR when that is set, e.g.
//
//	go build -tags pprof -o /tmp/bridge-pprof ./cmd/bridge
//	INSTANT_PPROF_ADDR=127.0.0.1:6060 /tmp/bridge-pprof
//	go tool pprof -seconds 10 http://127.0.0.1:6060/debug/pprof/profile
//
// The bridge's own listener (/metrics, /healthz, /readyz) has its own mux
// and never serves these. The listener lives as long as the process.
func init() {
	addr := os.Getenv("INSTANT_PPROF_ADDR")
	if addr == "" {
		return
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			fmt.Fprintln(os.Stderr, "bridge: pprof listener:", err)
		}
	}()
}
