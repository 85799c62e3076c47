package tokensvc

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter is one token bucket per key (a username, an address), with
// idle buckets dropped.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// newKeyedLimiter allows perMinute events a minute per key, all at once at
// most.
func newKeyedLimiter(perMinute int) *keyedLimiter {
	return &keyedLimiter{
		limit:   rate.Limit(float64(perMinute) / 60),
		burst:   perMinute,
		now:     time.Now,
		buckets: map[string]*bucket{},
	}
}

// reserve takes one event for key; when it is not allowed it returns false
// and how long until it would be.
func (l *keyedLimiter) reserve(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		// A bucket idle for more than a full refill is as good as new.
		full := time.Duration(float64(l.burst)/float64(l.limit)) * time.Second
		for k, b := range l.buckets {
			if now.Sub(b.last) > full+time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
