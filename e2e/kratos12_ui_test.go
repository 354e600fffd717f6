package e2e

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// refUI is a small external UI that behaves like Ory's reference UI
// (kratos-selfservice-ui-node) where this matters: it starts flows at the
// API's browser endpoints, fetches them server-side with the browser's
// Cookie header, renders their nodes as forms posting to ui.action, and on
// an error follows redirect_browser_to (session_aal2_required) or starts
// the flow again (403, 404, 410), as its redirectOnSoftError does. Like
// UIs that cache a flow's csrf_token, it refuses a flow whose token
// changed between two reads.
type refUI struct {
	srv *httptest.Server
	api string // the API's public base URL, without trailing slash

	mu    sync.Mutex
	csrf  map[string]string // flow id → csrf_token of its first read
	asked []string          // "<kind> <flow id>" of every page asked for
}

func newRefUI(t *testing.T) *refUI {
	t.Helper()
	ui := &refUI{csrf: map[string]string{}}
	ui.srv = httptest.NewServer(http.HandlerFunc(ui.serve))
	t.Cleanup(ui.srv.Close)
	return ui
}

func (ui *refUI) base() string { return ui.srv.URL }

// askedFor returns the flow ids of kind whose page the browser asked for.
func (ui *refUI) askedFor(kind string) []string {
	ui.mu.Lock()
	defer ui.mu.Unlock()
	var ids []string
	for _, f := range ui.asked {
		if k, id, _ := strings.Cut(f, " "); k == kind && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

var refUIPage = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Kind}}</title></head><body>
<h1 data-kind="{{.Kind}}" data-flow-id="{{.ID}}">{{.Kind}}</h1>
{{if .Error}}<p id="ui-error">{{.Error}}</p>{{end}}
<div class="messages">{{range .Messages}}<p data-message-id="{{.ID}}">{{.Text}}</p>{{end}}</div>
{{range .Forms}}<form action="{{$.Action}}" method="POST" data-group="{{.Group}}">
{{range .Nodes}}{{if eq .Type "text"}}<code data-id="{{.Attributes.ID}}">{{.Attributes.Text.Text}}</code>
{{else if eq .Type "input"}}{{if or (eq .Attributes.Type "submit") (eq .Attributes.Type "button")}}<button type="submit" name="{{.Attributes.Name}}" value="{{.Value}}">{{.Label}}</button>
{{else}}<label>{{.Label}}<input type="{{.Attributes.Type}}" name="{{.Attributes.Name}}" value="{{.Value}}"></label>
{{end}}{{end}}{{end}}</form>
{{end}}</body></html>`))

type refUINode struct {
	Type       string `json:"type"`
	Group      string `json:"group"`
	Attributes struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Type string `json:"type"`
		Val  any    `json:"value"`
		Text struct {
			Text string `json:"text"`
		} `json:"text"`
	} `json:"attributes"`
	Meta struct {
		Label *struct {
			Text string `json:"text"`
		} `json:"label"`
	} `json:"meta"`
}

func (n refUINode) Value() string {
	switch v := n.Attributes.Val.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func (n refUINode) Label() string {
	if n.Meta.Label != nil {
		return n.Meta.Label.Text
	}
	return n.Attributes.Name
}

type refUIForm struct {
	Group string
	Nodes []refUINode
}

func (ui *refUI) serve(w http.ResponseWriter, r *http.Request) {
	kind := strings.TrimPrefix(r.URL.Path, "/")
	switch kind {
	case "login", "registration", "settings", "recovery", "verification":
	case "error":
		ui.proxyError(w, r)
		return
	default:
		http.NotFound(w, r)
		return
	}
	id := r.URL.Query().Get("flow")
	initURL := ui.api + "/self-service/" + kind + "/browser"
	if id == "" {
		// Start the flow, passing return_to, aal and refresh along.
		q := url.Values{}
		for _, k := range []string{"return_to", "aal", "refresh"} {
			if v := r.URL.Query().Get(k); v != "" {
				q.Set(k, v)
			}
		}
		if len(q) > 0 {
			initURL += "?" + q.Encode()
		}
		http.Redirect(w, r, initURL, http.StatusSeeOther)
		return
	}
	ui.mu.Lock()
	ui.asked = append(ui.asked, kind+" "+id)
	ui.mu.Unlock()
	req, _ := http.NewRequest("GET", ui.api+"/self-service/"+kind+"/flows?id="+url.QueryEscape(id), nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cookie", r.Header.Get("Cookie"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				ID string `json:"id"`
			} `json:"error"`
			RedirectBrowserTo string `json:"redirect_browser_to"`
		}
		_ = json.Unmarshal(body, &e)
		switch {
		case e.Error.ID == "session_aal2_required" && e.RedirectBrowserTo != "":
			http.Redirect(w, r, e.RedirectBrowserTo, http.StatusSeeOther)
		case res.StatusCode == http.StatusUnauthorized:
			http.Redirect(w, r, ui.api+"/self-service/login/browser?return_to="+url.QueryEscape(ui.base()+r.URL.RequestURI()), http.StatusSeeOther)
		case res.StatusCode == http.StatusForbidden, res.StatusCode == http.StatusNotFound, res.StatusCode == http.StatusGone:
			http.Redirect(w, r, initURL, http.StatusSeeOther)
		default:
			http.Error(w, fmt.Sprintf("get %s flow: %d %s", kind, res.StatusCode, body), http.StatusBadGateway)
		}
		return
	}
	var f struct {
		ID string `json:"id"`
		UI struct {
			Action   string      `json:"action"`
			Nodes    []refUINode `json:"nodes"`
			Messages []struct {
				ID   int64  `json:"id"`
				Text string `json:"text"`
			} `json:"messages"`
		} `json:"ui"`
	}
	if err := json.Unmarshal(body, &f); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	page := map[string]any{"Kind": kind, "ID": f.ID, "Action": f.UI.Action, "Messages": f.UI.Messages}
	csrf := ""
	var shared []refUINode
	groups := map[string][]refUINode{}
	var order []string
	for _, n := range f.UI.Nodes {
		if n.Attributes.Name == "csrf_token" {
			csrf = n.Value()
		}
		if n.Group == "default" {
			shared = append(shared, n)
			continue
		}
		if _, ok := groups[n.Group]; !ok {
			order = append(order, n.Group)
		}
		groups[n.Group] = append(groups[n.Group], n)
	}
	ui.mu.Lock()
	if first, ok := ui.csrf[f.ID]; !ok {
		ui.csrf[f.ID] = csrf
	} else if first != csrf {
		page["Error"] = fmt.Sprintf("the csrf_token of flow %s changed between two reads", f.ID)
	}
	ui.mu.Unlock()
	// Settings: one form per method group, as the reference UI renders it;
	// the other flows: one form.
	var forms []refUIForm
	if kind == "settings" {
		for _, g := range order {
			forms = append(forms, refUIForm{Group: g, Nodes: append(append([]refUINode{}, shared...), groups[g]...)})
		}
	} else {
		all := append([]refUINode{}, shared...)
		for _, g := range order {
			all = append(all, groups[g]...)
		}
		forms = []refUIForm{{Group: "all", Nodes: all}}
	}
	page["Forms"] = forms
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := refUIPage.Execute(w, page); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// proxyError shows the API's flow error.
func (ui *refUI) proxyError(w http.ResponseWriter, r *http.Request) {
	res, err := http.Get(ui.api + "/self-service/errors?id=" + url.QueryEscape(r.URL.Query().Get("id")))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html><h1 data-kind=\"error\">error</h1><p id=\"ui-error\">%s</p>", template.HTMLEscapeString(string(body)))
}

// TestKratos12UIRecoveryWithSecondFactor is the journey of Ory's reference
// UI that failed in front of us (issue 12, items 8, 9 and 1): a user with
// a password and an authenticator app recovers the account by a mailed
// code, is sent to the second factor with the way back, enters the TOTP
// code, lands on the same settings flow and changes the password.
func TestKratos12UIRecoveryWithSecondFactor(t *testing.T) {
	t.Parallel()
	ensureChromium(t)
	ui := newRefUI(t)
	in := startUIInstance(t, "methods totp",
		"ui_url login "+ui.base()+"/login",
		"ui_url registration "+ui.base()+"/registration",
		"ui_url settings "+ui.base()+"/settings",
		"ui_url recovery "+ui.base()+"/recovery",
		"ui_url verification "+ui.base()+"/verification",
		"ui_url error "+ui.base()+"/error",
		"allowed_return_urls "+ui.base()+"/")
	ui.api = in.apiBase
	u := registerNative(t, in.instance)
	secret := linkTOTP(t, in.instance, u.Token)
	cr := startChromium(t)
	b := cr.newTab(t)

	// onPage fails unless the tab shows the UI's page of kind without a UI
	// error, and returns its flow id.
	onPage := func(step, kind string) string {
		t.Helper()
		if b.has("#ui-error") {
			t.Fatalf("%s: the UI refused the flow: %s (at %s)", step, b.text("#ui-error"), b.url())
		}
		b.wantURLPrefix(ui.base() + "/" + kind + "?flow=")
		id := b.str(`(document.querySelector("h1[data-flow-id]") || {dataset: {}}).dataset.flowId || ""`)
		if !isUUID(id) {
			t.Fatalf("%s: no %s flow on the page: %s", step, kind, b.text("body"))
		}
		return id
	}

	b.navigate(ui.base() + "/recovery")
	recoveryID := onPage("recovery page", "recovery")
	b.fill(`input[name="email"]`, u.Email)
	b.clickNav(`button[name="method"][value="code"]`)
	if got := onPage("after sending the code", "recovery"); got != recoveryID {
		t.Fatalf("after sending the code: recovery flow %s, want %s", got, recoveryID)
	}
	code := in.mail.last(t, u.Email, subjectRecovery, 1).code(t)
	b.fill(`input[name="code"]`, code)
	b.clickNav(`button[name="method"][value="code"]`)

	// The settings flow asked for the second factor: the TOTP login.
	onPage("after the recovery code", "login")
	settings := ui.askedFor("settings")
	if len(settings) != 1 {
		t.Fatalf("settings pages asked for before the second factor: %v, want the recovery's flow", settings)
	}
	settingsID := settings[0]
	totpCode, _ := totp.GenerateCode(secret, time.Now())
	b.fill(`input[name="totp_code"]`, totpCode)
	b.clickNav(`button[name="method"][value="totp"]`)

	// Back on the same settings flow, which is still this browser's.
	if !strings.HasPrefix(b.url(), ui.base()+"/settings?flow=") {
		t.Fatalf("after the TOTP code the browser is at %s, want the settings flow %s of %s", b.url(), settingsID, ui.base())
	}
	if got := onPage("after the TOTP code", "settings"); got != settingsID {
		t.Fatalf("after the TOTP code: settings flow %s, want the recovery's %s", got, settingsID)
	}
	newPassword := randPassword()
	b.fill(`form[data-group="password"] input[name="password"]`, newPassword)
	b.clickNav(`form[data-group="password"] button[name="method"][value="password"]`)
	if got := onPage("after the password change", "settings"); got != settingsID {
		t.Fatalf("after the password change: settings flow %s, want %s", got, settingsID)
	}
	if ids := evalT[[]int64](b, `Array.from(document.querySelectorAll(".messages [data-message-id]")).map(e => +e.dataset.messageId)`); !slices.Contains(ids, 1050001) {
		t.Fatalf("after the password change: messages %v, want 1050001; %s", ids, b.text("body"))
	}
	loginNative(t, in.instance, u.Email, newPassword)
}
