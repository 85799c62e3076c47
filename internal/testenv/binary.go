package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/instant-go/instant/internal/stack"
)

// BuildBinary builds b the first time (see stack.Binary.Path) and returns
// its path; the test fails when it does not build. The caller closes b
// when its tests are done (TestMain).
func BuildBinary(tb testing.TB, b *stack.Binary) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := b.Path(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
