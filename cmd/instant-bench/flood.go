package main

import (
	"context"
	"errors"
)

func (b *bench) flood(ctx context.Context) error { return errors.New("todo") }
