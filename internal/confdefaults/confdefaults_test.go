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

func TestFromEnv(t *testing.T) {
	var c struct {
		S   string        `envconfig:"X_S" default:"x"`
		Req string        `envconfig:"X_REQ" required:"true"`
		D   time.Duration `envconfig:"X_D" default:"1s"`
		L   []string      `envconfig:"X_L"`
		E   int           `envconfig:"X_E" default:"3"`
	}
	env := map[string]string{"X_REQ": "r", "X_D": "2m", "X_L": "a,b", "X_E": ""}
	if err := FromEnv(&c, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.S != "x" || c.Req != "r" || c.D != 2*time.Minute || !reflect.DeepEqual(c.L, []string{"a", "b"}) || c.E != 3 {
		t.Errorf("got %+v", c)
	}
	if err := FromEnv(&c, func(k string) (string, bool) { return "nope", k == "X_D" }); err == nil {
		t.Error("bad duration from the environment: want error")
	}
}
