package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// files are the templates and assets, embedded so the
// Content-Security-Policy stays strict: everything comes from the UI prefix,
// nothing inline.
//
//go:embed *.html *.css *.js *.svg
var files embed.FS

// asset is one embedded asset with its content hash (cache busting).
type asset struct {
	body  []byte
	ctype string
	hash  string
}

var assets = func() map[string]*asset {
	out := map[string]*asset{}
	for name, ctype := range map[string]string{
		"ui.css":      "text/css; charset=utf-8",
		"ui.js":       "text/javascript; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	} {
		b, err := files.ReadFile(name)
		if err != nil {
			panic("ui: missing embedded asset " + name)
		}
		out[name] = &asset{body: b, ctype: ctype, hash: shortHash(b)}
	}
	return out
}()

func shortHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// Asset serves GET <prefix>assets/{file}: the embedded assets and the
// theme stylesheet of the configured colour.
func (p *Pages) Asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	var body []byte
	var ctype string
	if name == "theme.css" {
		body, ctype = p.themeCSS(), "text/css; charset=utf-8"
	} else if a, ok := assets[name]; ok {
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

func (p *Pages) assetURL(name string) string {
	v := ""
	if name == "theme.css" {
		v = shortHash(p.themeCSS())
	} else if a, ok := assets[name]; ok {
		v = a.hash
	}
	return p.cfg.Prefix + "assets/" + name + "?v=" + v
}
