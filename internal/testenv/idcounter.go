package testenv

import (
	"encoding/json"
	"maps"
	"sync"
	"testing"
)

// IDCounter counts, by envelope id, the publications a Subscriber receives,
// until the test ends or Stop.
type IDCounter struct {
	mu      sync.Mutex
	counts  map[string]int
	total   int
	stopped bool
}

// CountIDs starts counting what sub receives; the counting goroutine ends at
// cleanup.
func CountIDs(tb testing.TB, sub *Subscriber) *IDCounter {
	tb.Helper()
	c := &IDCounter{counts: map[string]int{}}
	stop, finished := make(chan struct{}), make(chan struct{})
	tb.Cleanup(func() { close(stop); <-finished })
	go func() {
		defer close(finished)
		for {
			select {
			case <-stop:
				return
			case p := <-sub.Publications():
				var m struct{ ID string }
				_ = json.Unmarshal(p.Data, &m)
				c.mu.Lock()
				if !c.stopped {
					c.counts[m.ID]++
					c.total++
				}
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// Distinct is the number of distinct ids received so far.
func (c *IDCounter) Distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.counts)
}

// Count is the number of publications received so far.
func (c *IDCounter) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Stop makes the counter ignore what arrives from now on.
func (c *IDCounter) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
}

// Snapshot copies the counts by id.
func (c *IDCounter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}
