package natsbus

import "testing"

func TestRedactURLs(t *testing.T) {
	got := RedactURLs("nats://user:secret@a:4222, nats://b:4222,tls://tok@c")
	want := "nats://redacted@a:4222,nats://b:4222,tls://redacted@c"
	if got != want {
		t.Errorf("RedactURLs = %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		c    Config
		ok   bool
	}{
		{"url only", Config{URL: "nats://a"}, true},
		{"no url", Config{}, false},
		{"token and creds", Config{URL: "nats://a", Token: "t", CredsFile: "f"}, false},
		{"user without password", Config{URL: "nats://a", User: "u"}, false},
		{"user and password", Config{URL: "nats://a", User: "u", Password: "p"}, true},
		{"cert without key", Config{URL: "nats://a", TLSCert: "c"}, false},
		{"several servers", Config{URL: "nats://a:4222, tls://b:4222,c:4222,wss://d"}, true},
		{"an empty server in the list", Config{URL: "nats://a:4222,"}, false},
		{"an http server", Config{URL: "nats://a:4222,http://b"}, false},
		{"no host", Config{URL: "nats://"}, false},
	}
	for _, tc := range cases {
		if err := tc.c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
