// Package tokensvc is the token service: it finds out who the caller is
// (users file login, upstream JWT, an authenticating proxy's headers or anonymous) and
// issues Centrifugo connection and subscription tokens for exactly the
// channels the ACL lets that user subscribe to, on django-instant's
// /instant/ endpoints.
package tokensvc
