// Package logging builds the zap loggers of Instant's programs and names the
// log fields they share.
package logging

import (
	"fmt"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Field names shared by every component.
const (
	FieldComponent = "component"
	FieldSubject   = "subject"
	FieldChannel   = "channel"
	FieldUser      = "user"
	FieldReason    = "reason"
	FieldID        = "id"
	FieldProducer  = "producer"
	FieldServer    = "server"
	FieldAddr      = "addr" // a client's address
)

// New returns a logger writing to stderr at level ("debug", "info", "warn",
// "error") in format "json" or "console".
func New(level, format string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	var cfg zap.Config
	switch strings.ToLower(format) {
	case "json", "":
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.TimeKey = "ts"
		cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	case "console":
		cfg = zap.NewDevelopmentConfig()
	default:
		return nil, fmt.Errorf("log format %q: want json or console", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	cfg.OutputPaths = []string{"stderr"}
	cfg.ErrorOutputPaths = []string{"stderr"}
	return cfg.Build()
}
