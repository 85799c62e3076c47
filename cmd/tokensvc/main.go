// Command tokensvc is Instant's token service: it authenticates users and
// issues Centrifugo connection and subscription tokens for exactly the
// channels the ACL allows. Run tokensvc --help for its configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/instant-go/instant/internal/tokensvc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling so that a
		// second one exits at once.
		<-ctx.Done()
		stop()
	}()
	err := tokensvc.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, tokensvc.ErrDenied) {
		os.Exit(1) // explain said denied; the explanation is printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tokensvc:", err)
		os.Exit(1)
	}
}
