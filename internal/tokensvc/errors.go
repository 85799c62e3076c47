package tokensvc

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// apiError is an error answered to the client: a status, a stable machine
// code and a message safe to show.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // for 429
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// The error codes of the API, stable for clients.
const (
	codeBadRequest        = "bad_request"
	codeBodyTooLarge      = "body_too_large"
	codeUnsupportedMedia  = "unsupported_media_type"
	codeInvalidCredential = "invalid_credentials"
	codeNotAuthenticated  = "not_authenticated"
	codeForbiddenChannel  = "forbidden_channel"
	codeCSRF              = "csrf_failed"
	codeOrigin            = "origin_not_allowed"
	codeRateLimited       = "rate_limited"
	codeLoginBusy         = "login_busy"
	codeMethod            = "method_not_allowed"
	codeNotFound          = "not_found"
	codeInternal          = "internal_error"
	codeNotReady          = "not_ready"
	codeLoginDisabled     = "login_disabled"
	codeAmbiguousUser     = "ambiguous_proxy_user"
)

func errf(status int, code, msg string) *apiError {
	return &apiError{Status: status, Code: code, Message: msg}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal_error","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, e *apiError) {
	var body errorBody
	body.Error.Code, body.Error.Message = e.Code, e.Message
	if e.Status == http.StatusTooManyRequests {
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="instant"`)
	}
	writeJSON(w, e.Status, body)
}
