package flows

import (
	"encoding/json"
	"html/template"
	"net/http"

	"github.com/google/uuid"
)

// The fallback account pages: a plain HTML rendering of any flow's UI
// nodes, so a person can sign up and log in with only Caddyfile.example.
var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"input": func(n *Node) *InputAttrs { return n.input() },
	"text": func(n *Node) *TextAttrs {
		a, _ := n.Attributes.(*TextAttrs)
		return a
	},
	"img": func(n *Node) *ImageAttrs {
		a, _ := n.Attributes.(*ImageAttrs)
		return a
	},
	"anchor": func(n *Node) *AnchorAttrs {
		a, _ := n.Attributes.(*AnchorAttrs)
		return a
	},
	"str": func(v any) string {
		switch s := v.(type) {
		case nil:
			return ""
		case string:
			return s
		default:
			b, _ := json.Marshal(s)
			return string(b)
		}
	},
	"safeURL": func(s string) template.URL {
		// Only data:image/png (TOTP QR codes) and http(s) are rendered.
		if len(s) > 22 && s[:22] == "data:image/png;base64," {
			return template.URL(s)
		}
		return template.URL(template.HTMLEscapeString(s))
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#1f2937}
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input:not([type=hidden]):not([type=submit]){width:100%;padding:.55rem;box-sizing:border-box;border:1px solid #9ca3af;border-radius:6px}
button{margin-top:1rem;padding:.6rem 1rem;border:0;border-radius:6px;background:#2563eb;color:#fff;font-weight:600;cursor:pointer;margin-right:.5rem}
button:focus,input:focus{outline:3px solid #93c5fd}.msg{padding:.6rem;border-radius:6px;margin:.6rem 0;background:#eff6ff}
.error{background:#fef2f2;color:#991b1b}.success{background:#f0fdf4;color:#166534}.field-msg{color:#991b1b;font-size:.9rem}
nav a{margin-right:1rem}pre{white-space:pre-wrap}
</style></head><body>
<h1>{{.Title}}</h1>
{{with .Error}}<div class="msg error" role="alert"><strong>{{.Message}}</strong>{{with .Reason}}<p>{{.}}</p>{{end}}</div>{{end}}
{{with .Flow}}
{{range .UI.Messages}}<div class="msg {{.Type}}" data-id="{{.ID}}">{{.Text}}</div>{{end}}
<form action="{{.UI.Action}}" method="POST">
{{range .UI.Nodes}}{{$n := .}}
{{if eq .Type "input"}}{{with input .}}
{{if eq .Type "hidden"}}<input type="hidden" name="{{.Name}}" value="{{str .Value}}">
{{else if eq .Type "submit"}}<button type="submit" name="{{.Name}}" value="{{str .Value}}">{{with $n.Meta.Label}}{{.Text}}{{else}}Submit{{end}}</button>
{{else}}<label for="f-{{.Name}}">{{with $n.Meta.Label}}{{.Text}}{{else}}{{.Name}}{{end}}</label>
<input id="f-{{.Name}}" type="{{.Type}}" name="{{.Name}}" value="{{str .Value}}"{{if .Required}} required{{end}}{{with .Autocomplete}} autocomplete="{{.}}"{{end}}{{with .Pattern}} pattern="{{.}}"{{end}}{{if $n.Messages}} aria-describedby="m-{{.Name}}"{{end}}>
{{end}}{{if $n.Messages}}<div id="m-{{.Name}}" class="field-msg">{{range $n.Messages}}<span data-id="{{.ID}}">{{.Text}}</span> {{end}}</div>{{end}}
{{end}}{{else if eq .Type "text"}}{{with text .}}<pre id="{{.ID}}">{{.Text.Text}}</pre>{{end}}
{{else if eq .Type "img"}}{{with img .}}<img id="{{.ID}}" src="{{safeURL .Src}}" width="{{.Width}}" height="{{.Height}}" alt="">{{end}}
{{else if eq .Type "a"}}{{with anchor .}}<p><a id="{{.ID}}" href="{{.Href}}">{{.Title.Text}}</a></p>{{end}}
{{end}}{{end}}
</form>{{end}}
<nav><p><a href="{{.Base}}self-service/login/browser">Sign in</a><a href="{{.Base}}self-service/registration/browser">Sign up</a></p></nav>
</body></html>`))

type pageData struct {
	Title string
	Flow  *flow
	Error *Error
	Base  string
}

var pageTitles = map[string]string{
	"login": "Sign in", "registration": "Create an account", "settings": "Account settings",
	"recovery": "Recover your account", "verification": "Verify your email", "error": "Something went wrong",
}

func (e *Engine) uiPage(w http.ResponseWriter, r *http.Request) {
	page := r.PathValue("page")
	title, ok := pageTitles[page]
	if !ok {
		writeError(w, r, errNotFound())
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	data := pageData{Title: title, Base: e.baseURL(r)}
	if page == "error" {
		data.Error = e.loadStoredError(r)
		e.renderPage(w, data)
		return
	}
	id := r.URL.Query().Get("flow")
	f, err := e.loadFlow(r.Context(), id, page)
	if err != nil || f.Type != "browser" {
		// No usable flow: start a new one.
		redirect(w, http.StatusSeeOther, e.publicURL(r, "self-service/"+page+"/browser"))
		return
	}
	cookie := e.csrfFromCookie(r)
	if cookie == nil || !equalTokens(cookie, f.CSRFToken) || e.now().After(f.ExpiresAt) {
		redirect(w, http.StatusSeeOther, e.publicURL(r, "self-service/"+page+"/browser"))
		return
	}
	e.setCSRFNode(f, f.CSRFToken)
	data.Flow = f
	e.renderPage(w, data)
}

func (e *Engine) loadStoredError(r *http.Request) *Error {
	id := r.URL.Query().Get("id")
	if _, err := uuid.Parse(id); err != nil {
		return errNotFound()
	}
	b, err := e.store.GetRecord(r.Context(), errorNS, id)
	if err != nil {
		return errNotFound()
	}
	var fe flowError
	if err := json.Unmarshal(b, &fe); err != nil || fe.Error == nil {
		return errNotFound()
	}
	return fe.Error
}

func (e *Engine) renderPage(w http.ResponseWriter, data pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, data); err != nil {
		e.logger.Error("rendering page", zapErr(err))
	}
}
