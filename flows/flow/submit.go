package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/google/uuid"
	"go.uber.org/zap"
)

// Submission is one POST to a flow, decoded and checked.
type Submission struct {
	Flow   *Flow
	Body   map[string]any
	Method string
	// json: answer with JSON (API flow, JSON body or JSON Accept).
	JSON bool
	// toUI: answer flow renders with a 303 to the UI (browser form posts,
	// and links opened in a browser).
	ToUI bool
	// Callback: the submit is the browser's return from a social sign-in
	// provider (the oidc method's callback resumed the flow). A native
	// flow finished this way hands its session over by the token exchange
	// (Kernel.FinishNative), not in the answer: the answer goes to a
	// browser, not to the app.
	Callback bool
}

// Resume hands sub, a submission the server built (a provider's callback
// resuming its flow), to the flow's kind, after the expiry check every
// submit gets.
func (k *Kernel) Resume(w http.ResponseWriter, r *http.Request, sub *Submission) {
	if k.now().After(sub.Flow.ExpiresAt) {
		k.ReplaceExpired(w, r, sub)
		return
	}
	fk, ok := k.kinds[sub.Flow.Kind]
	if !ok {
		wire.WriteError(w, r, wire.NotFound())
		return
	}
	fk.Submit(w, r, sub)
}

// LoadAny loads a flow of one of kinds (the first that has the id).
func (k *Kernel) LoadAny(ctx context.Context, id string, kinds ...string) (*Flow, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrNotFound
	}
	b, err := k.store.GetRecord(ctx, FlowNS, id)
	if errors.Is(err, sessionstore.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load flow: %w", err)
	}
	var f Flow
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("decode flow: %w", err)
	}
	for _, kind := range kinds {
		if f.Kind == kind {
			if f.UI.Nodes == nil {
				f.UI.Nodes = []*node.Node{}
			}
			return &f, nil
		}
	}
	return nil, ErrNotFound
}

const flowParamReason = "The flow query parameter is missing or malformed."

// Submit is the shared front half of every update*Flow endpoint:
// flow lookup, body decoding, CSRF / API rules and expiry. Then it hands over
// to the kind's handler.
func (k *Kernel) Submit(w http.ResponseWriter, r *http.Request, kind string) {
	id := r.URL.Query().Get("flow")
	if _, err := uuid.Parse(id); err != nil {
		k.WriteError(w, r, "", wire.BadRequest(flowParamReason))
		return
	}
	f, err := k.Load(r.Context(), id, kind)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			k.WriteError(w, r, "", wire.NotFound())
			return
		}
		k.logger.Error("loading flow", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to load the flow"))
		return
	}
	sub := &Submission{Flow: f, JSON: f.Type == "api" || wire.IsJSONRequest(r)}
	sub.ToUI = f.Type == "browser" && !sub.JSON
	if r.Method != http.MethodPost {
		// GET on a submit path (k.g. a link without a method): show the flow.
		k.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	body, form, release, derr := wire.DecodeBodyRelease(r)
	defer release()
	if errors.Is(derr, wire.ErrBodiesBusy) {
		wire.WriteError(w, r, wire.LargeBodiesBusy())
		return
	}
	if derr != nil {
		f.UI.ResetMessages()
		f.UI.Messages = []node.Text{node.TextReason(4000001, derr.Error())}
		k.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if form != nil {
		// Form values are strings: the identity schema types the traits,
		// as Kratos's form decoder does.
		if traits, has := k.submitSchema(r.Context(), f).FormTraits(form); has {
			body["traits"] = traits
		}
	}
	sub.Body = body
	sub.Method = wire.BodyString(body, "method")
	if sub.Method == "" && (wire.BodyString(body, "provider") != "" || wire.BodyString(body, "link") != "" ||
		wire.BodyString(body, "unlink") != "") {
		// A provider's button posts provider (link, unlink in settings)
		// without a method, as Kratos's forms do.
		sub.Method = "oidc"
	}
	if tr, ok := body["traits"]; ok {
		// Traits end up in the identity: bounded, so 4 MiB submits do not
		// become 4 MiB identities.
		if b, err := json.Marshal(tr); err != nil || len(b) > maxTraitsBytes {
			f.UI.ResetMessages()
			f.UI.Messages = []node.Text{node.TextReason(4000001, fmt.Sprintf("The traits are too large: at most %d bytes of JSON are accepted.", maxTraitsBytes))}
			k.Render(w, r, sub, http.StatusBadRequest)
			return
		}
	}
	if tp, ok := body["transient_payload"].(map[string]any); ok {
		// The payload is stored with the flow and copied into mails:
		// bounded, so submits cannot fill the store.
		if reason := checkTransientPayload(tp); reason != "" {
			f.UI.ResetMessages()
			f.UI.Messages = []node.Text{node.TextReason(4000001, reason)}
			k.Render(w, r, sub, http.StatusBadRequest)
			return
		}
		f.TransientPayload = tp
	}
	if f.Type == "api" {
		if aerr := checkAPIRequest(r); aerr != nil {
			f.UI.ResetMessages()
			f.UI.Messages = []node.Text{node.TextReason(4000001, aerr.Reason)}
			k.Render(w, r, sub, http.StatusBadRequest)
			return
		}
	} else if cerr := k.CheckCSRF(r, f, wire.BodyString(body, "csrf_token")); cerr != nil {
		wire.WriteError(w, r, cerr)
		return
	}
	if k.now().After(f.ExpiresAt) {
		k.ReplaceExpired(w, r, sub)
		return
	}
	k.kinds[kind].Submit(w, r, sub)
}

// Bounds of transient_payload: its JSON encoding and its nesting (the
// payload object itself is level 1).
const (
	maxTransientPayloadBytes = 16 << 10
	maxTransientPayloadDepth = 8
)

// Bounds of what a submit stores: the traits' JSON encoding, and each
// submitted value written back into a stored flow (a larger one is not
// echoed), so a submit near the body cap cannot store megabytes.
const (
	maxTraitsBytes      = 64 << 10
	maxEchoedValueBytes = 16 << 10
)

// checkTransientPayload returns why tp is refused, or "".
func checkTransientPayload(tp map[string]any) string {
	if jsonDepth(tp, maxTransientPayloadDepth+1) > maxTransientPayloadDepth {
		return fmt.Sprintf("transient_payload is nested too deeply: at most %d levels of objects and arrays are accepted.", maxTransientPayloadDepth)
	}
	if b, err := json.Marshal(tp); err != nil || len(b) > maxTransientPayloadBytes {
		return fmt.Sprintf("transient_payload is too large: at most %d bytes of JSON are accepted.", maxTransientPayloadBytes)
	}
	return ""
}

// jsonDepth is the nesting depth of v's objects and arrays, counted up to
// limit (deeper values report limit).
func jsonDepth(v any, limit int) int {
	if limit <= 0 {
		return 0
	}
	deepest := 0
	switch x := v.(type) {
	case map[string]any:
		for _, c := range x {
			deepest = max(deepest, jsonDepth(c, limit-1))
		}
	case []any:
		for _, c := range x {
			deepest = max(deepest, jsonDepth(c, limit-1))
		}
	default:
		return 0
	}
	return 1 + deepest
}

// Render saves the flow with its messages and answers it: 303 to
// the UI for browser form posts, the flow as JSON otherwise.
func (k *Kernel) Render(w http.ResponseWriter, r *http.Request, sub *Submission, status int) {
	f := sub.Flow
	for _, n := range f.UI.Nodes {
		a := n.Input()
		switch {
		case a == nil:
		case a.Type == "password":
			a.Value = nil // passwords are never echoed
		case echoTooLarge(a.Value):
			a.Value = ""
		}
	}
	if err := k.Save(r.Context(), f); err != nil {
		k.logger.Error("saving flow", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	if sub.ToUI {
		wire.Redirect(w, r, http.StatusSeeOther, wire.WithQuery(k.urls.UI(f.Kind), "flow", f.ID))
		return
	}
	if f.Type == "browser" {
		if k.HoldsCSRF(r, f) {
			k.SetCSRFNode(f, f.CSRFToken)
		} else if n := f.UI.Find("csrf_token"); n != nil {
			// Not shown to hold the flow's CSRF cookie (a GET of the submit
			// path, a body that did not decode, before the CSRF check): the
			// answer must not hand the flow's token to whoever knows its id.
			n.Input().Value = ""
		}
	}
	WriteFlow(w, status, f)
}

// echoTooLarge reports whether v, a node value, is over maxEchoedValueBytes.
func echoTooLarge(v any) bool {
	switch x := v.(type) {
	case nil, bool, json.Number:
		return false
	case string:
		return len(x) > maxEchoedValueBytes
	}
	b, err := json.Marshal(v)
	return err != nil || len(b) > maxEchoedValueBytes
}

// ReplaceExpired answers a submit to an expired flow: a new flow of the
// same kind with the "expired" message, 410 with use_flow_id or 303 to it.
func (k *Kernel) ReplaceExpired(w http.ResponseWriter, r *http.Request, sub *Submission) {
	old := sub.Flow
	if _, lerr := k.Reserve(r.Context(), "flow_ip", k.LimitIP(r)); lerr != nil {
		k.Refuse(w, r, sub, lerr)
		return
	}
	var nf *Flow
	var ferr *wire.Error
	r2 := r.Clone(r.Context())
	if u, err := RequestQuery(old.RequestURL); err == nil {
		r2.URL.RawQuery = u
	}
	nf, ferr = k.kinds[old.Kind].Init(r2, old.Type)
	if ferr != nil {
		k.WriteError(w, r, old.Type, ferr)
		return
	}
	nf.RequestURL = old.RequestURL
	nf.CSRFToken = old.CSRFToken
	k.SetCSRFNode(nf, old.CSRFToken)
	ago := k.now().Sub(old.ExpiresAt)
	msgID := map[string]int{"login": 4010001, "registration": 4040001, "settings": 4050001, "recovery": 4060005, "verification": 4070005}[old.Kind]
	nf.UI.Messages = []node.Text{node.NewText(msgID, map[string]any{"expired_at": old.ExpiresAt, "expired_at_unix": old.ExpiresAt.Unix()}, ago.Minutes())}
	if err := k.Save(r.Context(), nf); err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	if sub.ToUI {
		wire.Redirect(w, r, http.StatusSeeOther, wire.WithQuery(k.urls.UI(old.Kind), "flow", nf.ID))
		return
	}
	ee := wire.FlowExpired(old.ExpiresAt, nil)
	ee.WithExtra("use_flow_id", nf.ID)
	wire.WriteError(w, r, ee)
}

// RequestQuery is the query of a flow's request URL.
func RequestQuery(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			return s[i+1:], nil
		}
	}
	return "", nil
}

// --- flow errors (stored for the error UI) ---

const errorNS = "ferr"

// FlowError is a stored error, as GET /self-service/errors answers it.
type FlowError struct {
	ID        string      `json:"id"`
	Error     *wire.Error `json:"error"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// WriteError answers a non-flow error: browser navigations are
// sent to the error UI with the error stored; everyone else gets JSON.
func (k *Kernel) WriteError(w http.ResponseWriter, r *http.Request, typ string, ee *wire.Error) {
	if typ == "api" || !wire.PrefersHTML(r) || wire.IsJSONRequest(r) {
		wire.WriteError(w, r, ee)
		return
	}
	id, err := k.StoreError(r.Context(), ee)
	if err != nil {
		wire.WriteError(w, r, ee)
		return
	}
	wire.Redirect(w, r, http.StatusSeeOther, wire.WithQuery(k.urls.UI("error"), "id", id))
}

// StoreError keeps an error for the error UI for a day and returns its id.
func (k *Kernel) StoreError(ctx context.Context, ee *wire.Error) (string, error) {
	now := k.now().UTC()
	fe := FlowError{ID: uuid.NewString(), Error: ee, CreatedAt: now, UpdatedAt: now}
	b, err := json.Marshal(fe)
	if err != nil {
		return "", err
	}
	return fe.ID, k.store.PutRecord(ctx, errorNS, fe.ID, b, 24*time.Hour)
}

// GetError serves GET /self-service/errors?id=.
func (k *Kernel) GetError(w http.ResponseWriter, r *http.Request) {
	k.EnsureCSRF(w, r)
	id := r.URL.Query().Get("id")
	if id == "" {
		id = r.URL.Query().Get("error")
	}
	if id == "stub:500" {
		wire.WriteJSON(w, http.StatusOK, FlowError{ID: uuid.NewString(),
			Error: wire.NewError(http.StatusInternalServerError, "", "", "This is a stub error.")})
		return
	}
	if _, err := uuid.Parse(id); err != nil {
		wire.WriteError(w, r, wire.NotFound())
		return
	}
	fe, err := k.LoadError(r.Context(), id)
	if errors.Is(err, sessionstore.ErrNotFound) {
		wire.WriteError(w, r, wire.NotFound())
		return
	}
	if err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to load the error"))
		return
	}
	wire.WriteJSON(w, http.StatusOK, fe)
}

// LoadError reads a stored flow error (sessionstore.ErrNotFound when
// there is none).
func (k *Kernel) LoadError(ctx context.Context, id string) (*FlowError, error) {
	b, err := k.store.GetRecord(ctx, errorNS, id)
	if err != nil {
		return nil, err
	}
	var fe FlowError
	if err := json.Unmarshal(b, &fe); err != nil {
		return nil, fmt.Errorf("decode flow error: %w", err)
	}
	return &fe, nil
}

// Finish answers a completed flow per client kind.
//   - API: 200 with apiBody.
//   - browser JSON: 200 with jsonBody.
//   - browser form post: 303 to returnTo.
func (k *Kernel) Finish(w http.ResponseWriter, r *http.Request, sub *Submission, returnTo string, apiBody, jsonBody any) {
	switch {
	case sub.Flow.Type == "api":
		wire.WriteJSON(w, http.StatusOK, apiBody)
	case sub.JSON:
		wire.WriteJSON(w, http.StatusOK, jsonBody)
	default:
		wire.Redirect(w, r, http.StatusSeeOther, returnTo)
	}
}

// ReturnTo is where a finished browser flow goes.
func (k *Kernel) ReturnTo(r *http.Request, f *Flow) string {
	if f.ReturnTo != "" {
		return f.ReturnTo
	}
	return k.urls.DefaultReturn()
}

// ContinueRedirect is the continue_with item that sends the browser to to.
func ContinueRedirect(to string) map[string]any {
	return map[string]any{"action": "redirect_browser_to", "redirect_browser_to": to}
}

// submitSchema is the schema that types a flow's form traits: the
// identity's for a settings flow, else the flow's own (registration).
func (k *Kernel) submitSchema(ctx context.Context, f *Flow) *identity.Schema {
	if f.Kind == "settings" && f.IdentityID != "" {
		if ident, err := k.store.GetIdentityShared(ctx, f.IdentityID); err == nil {
			return k.schemas.Of(ident)
		}
	}
	return k.FlowSchema(f)
}
