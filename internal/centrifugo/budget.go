package centrifugo

import (
	"context"
	"sync"
)

// budget bounds the bytes held by the Forwarder: items waiting and in
// flight, measured as encoded commands. An item larger than what is left
// waits until enough is released; one item is always let in when nothing is
// held, so an item as large as the whole budget still goes.
type budget struct {
	mu    sync.Mutex
	used  int
	limit int
	freed chan struct{} // closed, and replaced, whenever bytes are released
}

func newBudget(limit int) *budget {
	return &budget{limit: limit, freed: make(chan struct{})}
}

// acquire takes n bytes, waiting while they are not there, until ctx ends
// or closing is closed.
func (b *budget) acquire(ctx context.Context, closing <-chan struct{}, n int) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-closing:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) release(n int) {
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// held is the number of bytes taken.
func (b *budget) held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
