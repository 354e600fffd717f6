package flows

import (
	"crypto/sha512"
	_ "embed"
	"encoding/base64"
	"net/http"
)

// webauthnJS is Kratos's webauthn.js, served at
// /.well-known/ory/webauthn.js for the forms' script nodes.
//
//go:embed assets/webauthn.js
var webauthnJS []byte

// webauthnIntegrity is the SRI hash script nodes advertise for webauthnJS.
var webauthnIntegrity = func() string {
	h := sha512.Sum512(webauthnJS)
	return "sha512-" + base64.StdEncoding.EncodeToString(h[:])
}()

func (e *Engine) webauthnJS(w http.ResponseWriter, r *http.Request) {
	e.kernel.EnsureCSRF(w, r)
	w.Header().Set("Content-Type", "text/javascript; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(webauthnJS)
}
