package tokensvc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	jsclient "github.com/instant-go/instant/clients/js"
)

// asset is a file served as is: the browser client's bundles and the demo
// page's files.
type asset struct {
	route       string
	body        []byte
	contentType string
	etag        string
}

func newAsset(route string, body []byte, contentType string) asset {
	sum := sha256.Sum256(body)
	return asset{route: route, body: body, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// The browser client's bundles (clients/js), built into the binary.
var (
	clientScript = newAsset("client_js", jsclient.Script, "text/javascript; charset=utf-8")
	clientModule = newAsset("client_mjs", jsclient.Module, "text/javascript; charset=utf-8")
)

// clientCacheControl: the bundle URLs carry no version, so caches keep a
// copy for a few minutes and then revalidate it with the ETag (a 304 while
// the binary is the same).
const clientCacheControl = "public, max-age=300"

// serve answers the asset, with 304 for a matching If-None-Match.
func (a asset) serve(cacheControl string, extra map[string]string) func(http.ResponseWriter, *http.Request) *apiError {
	return func(w http.ResponseWriter, r *http.Request) *apiError {
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", cacheControl)
		h.Set("ETag", a.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		for k, v := range extra {
			h.Set(k, v)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
		return nil
	}
}

// publicScript are the headers that let a page of any origin load a bundle:
// with a plain script tag, a module script (CORS mode) or fetch. No
// credentials are involved, so "*" is safe.
var publicScript = map[string]string{
	"Access-Control-Allow-Origin":  "*",
	"Cross-Origin-Resource-Policy": "cross-origin",
}

// withStatic serves the client bundles, and the demo page when it is on,
// ahead of the API's origin policy: they are public files that pages of any
// origin may load, and they hand out nothing that needs credentials.
// Everything else goes to api.
func (s *Server) withStatic(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	get := []string{http.MethodGet, http.MethodHead}
	for path, a := range map[string]asset{"/instant/client.js": clientScript, "/instant/client.mjs": clientModule} {
		mux.Handle(path, s.instrument(endpoint{a.route, get, a.serve(clientCacheControl, publicScript)}))
	}
	if s.cfg.Demo {
		s.addDemo(mux, get)
	}
	mux.Handle("/", api)
	return mux
}
