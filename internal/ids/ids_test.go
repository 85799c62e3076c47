package ids

import (
	"sort"
	"testing"
	"time"
)

func TestNextIsSortableAndUnique(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	tick := 0
	g := NewWithClock(func() time.Time {
		tick++
		return base.Add(time.Duration(tick/50) * time.Millisecond) // 50 ids per millisecond
	})
	seen := map[string]bool{}
	var all []string
	for i := 0; i < 5000; i++ {
		id := g.Next()
		if len(id) != 26 {
			t.Fatalf("id %q: len %d, want 26", id, len(id))
		}
		if seen[id] {
			t.Fatalf("duplicate id %q at %d", id, i)
		}
		seen[id] = true
		all = append(all, id)
	}
	if !sort.StringsAreSorted(all) {
		t.Fatal("ids are not increasing in creation order")
	}
}

func TestNextTimePrefix(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_000)
	a := NewWithClock(func() time.Time { return at }).Next()
	b := NewWithClock(func() time.Time { return at.Add(time.Millisecond) }).Next()
	if a[:10] >= b[:10] {
		t.Errorf("time prefix %s of an earlier id is not below %s", a[:10], b[:10])
	}
	// 1_700_000_000_000 ms is 01HF... in ULID's time encoding.
	if a[:4] != "01HF" {
		t.Errorf("time prefix %s, want 01HF...", a[:10])
	}
}

func TestClockGoingBackwardsStaysIncreasing(t *testing.T) {
	times := []int64{1000, 999, 998, 1001}
	i := 0
	g := NewWithClock(func() time.Time { ms := times[i%len(times)]; i++; return time.UnixMilli(ms) })
	prev := ""
	for range times {
		id := g.Next()
		if id <= prev {
			t.Fatalf("id %s not above previous %s", id, prev)
		}
		prev = id
	}
}

func BenchmarkNext(b *testing.B) {
	g := New()
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Next()
	}
}

func TestAtIsDeterministic(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_000)
	a, b := At(at, 42), At(at, 42)
	if a != b || len(a) != 26 {
		t.Fatalf("At twice: %q %q, want the same 26-char id", a, b)
	}
	if At(at, 43) == a {
		t.Error("different sequences gave the same id")
	}
	if !(At(at, 42) < At(at.Add(time.Millisecond), 1)) {
		t.Error("a later time does not sort after")
	}
	if a[:4] != "01HF" {
		t.Errorf("time prefix %s, want 01HF", a[:10])
	}
}
