// Package ids generates the envelope ids the bridge assigns when a producer
// gives none: ULID-formatted (26 characters of Crockford base32), sortable by
// creation time across processes and strictly increasing within one.
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Generator makes ids. The zero value is not usable; call New.
type Generator struct {
	mu      sync.Mutex
	lastMS  uint64
	entropy [10]byte // 80 bits: random, then incremented within a millisecond
	now     func() time.Time
}

// New returns a generator seeded from crypto/rand.
func New() *Generator {
	g := &Generator{now: time.Now}
	_, _ = rand.Read(g.entropy[:])
	return g
}

// NewWithClock is New with a custom clock (tests).
func NewWithClock(now func() time.Time) *Generator {
	g := New()
	g.now = now
	return g
}

// Next returns a new id.
func (g *Generator) Next() string {
	var b [26]byte
	g.mu.Lock()
	ms := uint64(g.now().UnixMilli())
	if ms > g.lastMS {
		g.lastMS = ms
		_, _ = rand.Read(g.entropy[:])
		g.entropy[0] &= 0x7f // leave room to increment without overflow
	} else {
		// Same (or earlier) millisecond: keep the time, increment the entropy,
		// so ids stay strictly increasing within this process.
		ms = g.lastMS
		lo := binary.BigEndian.Uint64(g.entropy[2:]) + 1
		binary.BigEndian.PutUint64(g.entropy[2:], lo)
		if lo == 0 {
			hi := binary.BigEndian.Uint16(g.entropy[:2]) + 1
			binary.BigEndian.PutUint16(g.entropy[:2], hi)
		}
	}
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], ms<<16)
	copy(raw[6:], g.entropy[:])
	g.mu.Unlock()
	encode(&b, &raw)
	return string(b[:])
}

// encode writes 128 bits as 26 base32 characters (the first carries 3 bits).
func encode(dst *[26]byte, src *[16]byte) {
	hi := binary.BigEndian.Uint64(src[:8])
	lo := binary.BigEndian.Uint64(src[8:])
	for i := 25; i >= 0; i-- {
		dst[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
}

// At returns the id of a stored message: the ULID whose time is at and
// whose 80 random bits are replaced by seq. The same message always gets
// the same id, so a redelivered envelope without a producer id keeps its id
// and subscribers can drop the duplicate; ids still sort by time.
func At(at time.Time, seq uint64) string {
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(at.UnixMilli())<<16)
	binary.BigEndian.PutUint64(raw[8:], seq)
	var b [26]byte
	encode(&b, &raw)
	return string(b[:])
}
