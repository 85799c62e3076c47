// Package confdefaults fills a configuration struct with the defaults of its
// envconfig `default:"..."` tags, without reading the environment: for tests
// and for programs that embed a component.
package confdefaults

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

var durationType = reflect.TypeOf(time.Duration(0))

// Apply sets every field of *ptr that has a default tag. It supports the
// field kinds Instant's configurations use: string, bool, int kinds,
// time.Duration, and slices of those (comma-separated).
func Apply(ptr any) error {
	return FromEnv(ptr, func(string) (string, bool) { return "", false })
}

// FromEnv is Apply, then every field whose envconfig variable lookup finds
// (os.LookupEnv) with a non-empty value is set from it instead, with the
// same parsing. Unlike
// envconfig.Process it does not insist on required variables: for the
// commands that use part of a configuration (explain).
func FromEnv(ptr any, lookup func(string) (string, bool)) error {
	v := reflect.ValueOf(ptr)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("confdefaults: want a pointer to a struct, got %T", ptr)
	}
	v = v.Elem()
	t := v.Type()
	for i := range t.NumField() {
		def, ok := t.Field(i).Tag.Lookup("default")
		if name := t.Field(i).Tag.Get("envconfig"); name != "" {
			if val, set := lookup(name); set && val != "" {
				def, ok = val, true
			}
		}
		if !ok {
			continue
		}
		f := v.Field(i)
		if f.Kind() == reflect.Slice {
			parts := strings.Split(def, ",")
			sl := reflect.MakeSlice(f.Type(), len(parts), len(parts))
			for j, p := range parts {
				if err := set(sl.Index(j), strings.TrimSpace(p)); err != nil {
					return fmt.Errorf("confdefaults: %s: %w", t.Field(i).Name, err)
				}
			}
			f.Set(sl)
			continue
		}
		if err := set(f, def); err != nil {
			return fmt.Errorf("confdefaults: %s: %w", t.Field(i).Name, err)
		}
	}
	return nil
}

func set(f reflect.Value, def string) error {
	switch {
	case f.Type() == durationType:
		d, err := time.ParseDuration(def)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		f.SetString(def)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(def)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case f.CanInt():
		n, err := strconv.ParseInt(def, 10, 64)
		if err != nil {
			return err
		}
		f.SetInt(n)
	default:
		return fmt.Errorf("unsupported kind %s", f.Kind())
	}
	return nil
}
