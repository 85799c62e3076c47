package confdefaults

import (
	"reflect"
	"testing"
	"time"
)

func TestApply(t *testing.T) {
	var c struct {
		S  string          `default:"x"`
		B  bool            `default:"true"`
		N  int             `default:"42"`
		N6 int64           `default:"-7"`
		D  time.Duration   `default:"1m30s"`
		L  []string        `default:"a,b"`
		DL []time.Duration `default:"1s,2s"`
		No string
	}
	c.No = "kept"
	if err := Apply(&c); err != nil {
		t.Fatal(err)
	}
	if c.S != "x" || !c.B || c.N != 42 || c.N6 != -7 || c.D != 90*time.Second || !reflect.DeepEqual(c.L, []string{"a", "b"}) || !reflect.DeepEqual(c.DL, []time.Duration{time.Second, 2 * time.Second}) || c.No != "kept" {
		t.Errorf("got %+v", c)
	}
}

func TestApplyErrors(t *testing.T) {
	var bad struct {
		D time.Duration `default:"soon"`
	}
	if err := Apply(&bad); err == nil {
		t.Error("bad duration: want error")
	}
	var c struct{}
	if err := Apply(c); err == nil {
		t.Error("non-pointer: want error")
	}
}
