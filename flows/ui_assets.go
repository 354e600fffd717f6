package flows

import (
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

func (e *Engine) uiAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	var body []byte
	var ctype string
	if name == "theme.css" {
		body, ctype = e.themeCSS(), "text/css; charset=utf-8"
	} else if a, ok := uiAssets[name]; ok {
		body, ctype = a.body, a.ctype
	} else {
		wire.WriteError(w, r, wire.NotFound())
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "same-site")
	if r.URL.Query().Get("v") != "" {
		// Versioned URLs change with the content.
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (e *Engine) assetURL(name string) string {
	v := ""
	if name == "theme.css" {
		v = shortHash(e.themeCSS())
	} else if a, ok := uiAssets[name]; ok {
		v = a.hash
	}
	return e.cfg.UIPrefix + "assets/" + name + "?v=" + v
}
