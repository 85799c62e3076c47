package acl_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/instant-go/instant/pkg/acl"
)

func publishRegistry(tb testing.TB) *acl.Registry {
	tb.Helper()
	r, err := acl.NewRegistry([]acl.Channel{
		{Name: "public", Level: acl.LevelPublic, Active: true},
		{Name: "$billing", Level: acl.LevelStaff, Active: true, Publishers: []string{"billing", "admin"}},
		{Name: "$old", Level: acl.LevelStaff, Active: false},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestCheckPublish(t *testing.T) {
	r := publishRegistry(t)
	tests := []struct {
		name     string
		producer string
		channels []string
		code     string // "" for accepted
		channel  string
		msg      string
	}{
		{"open channel", "anyone", []string{"public"}, "", "", ""},
		{"open channel, no producer", "", []string{"public"}, "", "", ""},
		{"listed publisher", "billing", []string{"$billing"}, "", "", ""},
		{"second listed publisher", "admin", []string{"public", "$billing"}, "", "", ""},
		{"no channels", "x", nil, "", "", ""},
		{"unknown", "billing", []string{"$nope"}, acl.CodeUnknownChannel, "$nope", `unknown_channel: channel "$nope" is not registered`},
		{"inactive", "billing", []string{"$old"}, acl.CodeInactiveChannel, "$old", `inactive_channel: channel "$old" is not active`},
		{"unlisted publisher", "shop", []string{"$billing"}, acl.CodePublisherDenied, "$billing", `publisher_denied: producer "shop" may not publish to channel "$billing"`},
		{"empty producer on a listed channel", "", []string{"$billing"}, acl.CodePublisherDenied, "$billing", ""},
		{"publisher names are case-sensitive", "Billing", []string{"$billing"}, acl.CodePublisherDenied, "$billing", ""},
		{"first failing channel is reported", "shop", []string{"public", "$billing", "$nope"}, acl.CodePublisherDenied, "$billing", ""},
		{"whole envelope refused", "billing", []string{"$billing", "$old"}, acl.CodeInactiveChannel, "$old", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := r.CheckPublish(tc.producer, tc.channels)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("CheckPublish(%q, %q) = %v, want nil", tc.producer, tc.channels, err)
				}
				return
			}
			var e *acl.Error
			if !errors.As(err, &e) {
				t.Fatalf("CheckPublish(%q, %q) = %v (%T), want *acl.Error", tc.producer, tc.channels, err, err)
			}
			if e.Code() != tc.code || e.Channel != tc.channel || e.Producer != tc.producer {
				t.Errorf("got code %q channel %q producer %q, want %q %q %q", e.Code(), e.Channel, e.Producer, tc.code, tc.channel, tc.producer)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("Error() = %q, want %q", err, tc.msg)
			}
		})
	}
}

func TestCheckPublishNilRegistry(t *testing.T) {
	var r *acl.Registry
	var e *acl.Error
	if err := r.CheckPublish("p", []string{"a"}); !errors.As(err, &e) || e.Code() != acl.CodeUnknownChannel {
		t.Errorf("nil registry: CheckPublish = %v, want unknown_channel", err)
	}
}

func TestCheckPublishDoesNotAllocate(t *testing.T) {
	r := publishRegistry(t)
	channels := []string{"public", "$billing"}
	allocs := testing.AllocsPerRun(100, func() {
		if err := r.CheckPublish("admin", channels); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("CheckPublish allocates %v times on success, want 0", allocs)
	}
}

func BenchmarkCheckPublish(b *testing.B) {
	chs := make([]acl.Channel, 1000)
	for i := range chs {
		chs[i] = acl.Channel{Name: fmt.Sprintf("$channel%d", i), Level: acl.LevelUsers, Active: true}
		if i%2 == 0 {
			chs[i].Publishers = []string{"shop", "crm", "billing"}
		}
	}
	r, err := acl.NewRegistry(chs)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name     string
		channels []string
	}{
		{"1-channel", []string{"$channel10"}},
		{"3-channels", []string{"$channel10", "$channel11", "$channel998"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := r.CheckPublish("billing", bc.channels); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("denied", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := r.CheckPublish("billing", []string{"$nope"}); err == nil {
				b.Fatal("accepted an unknown channel")
			}
		}
	})
}
