package tokensvc

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// parseOrigin normalises an origin: scheme://host[:port], lower case.
func parseOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin (want scheme://host[:port], e.g. https://app.example.com)", s)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// peerAddr is the address of the direct peer of the connection.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// trusted reports whether a is in one of the prefixes.
func trusted(prefixes []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the caller's address for rate limits: the peer, or, when
// the peer is a trusted proxy, the right-most address of forwardedFor that
// is not a trusted proxy.
func clientAddr(r *http.Request, prefixes []netip.Prefix, forwardedFor string) string {
	a := peerAddr(r)
	if trusted(prefixes, a) && forwardedFor != "" {
		hops := strings.Split(strings.Join(r.Header.Values(forwardedFor), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			h = h.Unmap()
			a = h
			if !trusted(prefixes, h) {
				break
			}
		}
	}
	if !a.IsValid() {
		return r.RemoteAddr
	}
	return a.String()
}

// addrKey is the rate-limit key of a client address: the address itself for
// IPv4, its /64 for IPv6 (one subscriber, or one host, usually has a whole
// /64 and could otherwise take a new address per attempt).
func addrKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a.WithZone(""), 64).Masked().String()
}
