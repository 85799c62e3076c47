package centrifugo

import (
	"fmt"
	"net/url"
	"strings"
)

// SplitAPIURLs is a comma-separated list of API URLs (the form of
// INSTANT_CENTRIFUGO_API_URL), in order, spaces around the commas removed.
// An empty entry stays, for CheckAPIURL to refuse.
func SplitAPIURLs(list string) []string {
	urls := strings.Split(list, ",")
	for i, u := range urls {
		urls[i] = strings.TrimSpace(u)
	}
	return urls
}

// CheckAPIURL reports whether u can be an API URL: http or https, with a
// host.
func CheckAPIURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", u)
	}
	return nil
}
