package verification

import (
	"net/http"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Verification and recovery by code or link (issue: mail, verification,
// recovery). Both flows keep the pending code in flow.Internal.

// ErrDisabled is the answer while verification is off.
func ErrDisabled() *wire.Error {
	return wire.FlowDisabled("Verification is not allowed because it was disabled.")
}

// verificationForm renders the choose_method screen.
func (v *Flow) verificationForm(f *flow.Flow) {
	group := v.cfg.VerificationUse
	f.State = "choose_method"
	f.Active = group
	f.UI.Nodes = []*node.Node{
		node.Input(group, "email", "email", node.Label(1070007, nil)).Required(),
		node.Submit(group, "method", group, node.Label(1070009, nil)),
	}
	if f.Type == "browser" {
		f.UI.Nodes = append(f.UI.Nodes, node.CSRF(""))
	}
}

// verificationSent renders the sent_email screen.
func (v *Flow) verificationSent(f *flow.Flow, address string) {
	group := v.cfg.VerificationUse
	f.State = "sent_email"
	f.Active = group
	if group == "link" {
		f.UI.Nodes = []*node.Node{
			node.Input(group, "email", "email", node.Label(1070007, nil)).Required().Value(address),
			node.Submit(group, "method", "link", node.Label(1070009, nil)),
		}
		f.UI.Messages = []node.Text{node.NewText(1080001, nil)}
	} else {
		f.UI.Nodes = []*node.Node{
			node.Input("code", "method", "hidden", nil).Value("code"),
			node.Input("code", "code", "text", node.Label(1070011, nil)).Required().Autocomplete("one-time-code"),
			node.Submit("code", "method", "code", node.Label(1070009, nil)),
			node.Submit("code", "email", address, node.Label(1070008, nil)),
		}
		f.UI.Messages = []node.Text{node.NewText(1080003, nil)}
	}
	if f.Type == "browser" {
		f.UI.Nodes = append(f.UI.Nodes, node.CSRF(""))
	}
}

// Init builds a new verification flow (not yet stored).
func (v *Flow) Init(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
	if !v.cfg.VerificationEnabled {
		return nil, ErrDisabled()
	}
	returnTo, rerr := v.kernel.ValidateReturnTo(r, r.URL.Query().Get("return_to"))
	if rerr != nil {
		return nil, rerr
	}
	f := v.kernel.NewFlow(r, "verification", typ)
	f.ReturnTo = returnTo
	v.verificationForm(f)
	return f, nil
}

// Submit is updateVerificationFlow after the kernel's checks.
func (v *Flow) Submit(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	f := sub.Flow
	f.UI.ResetMessages()
	if !v.cfg.VerificationEnabled {
		v.kernel.WriteError(w, r, f.Type, ErrDisabled())
		return
	}
	if sub.Method != "code" && sub.Method != "link" || sub.Method != v.cfg.VerificationUse {
		if n := f.UI.Find("method"); n != nil {
			f.UI.AddNodeMessage("method", node.TextReason(4000001, "Could not find a strategy to verify your account with. Did you fill out the form correctly?"))
		} else {
			f.UI.Messages = []node.Text{node.NewText(4010006, nil)}
		}
		v.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if f.State == "passed_challenge" {
		f.UI.Messages = []node.Text{node.NewText(4070002, nil)}
		v.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if code := wire.BodyString(sub.Body, "code"); code != "" && sub.Method == "code" {
		v.verifyCode(w, r, sub, code)
		return
	}
	email := strings.ToLower(strings.TrimSpace(wire.BodyString(sub.Body, "email")))
	if email == "" {
		f.UI.AddNodeMessage("email", node.NewText(4000002, map[string]any{"property": "email"}, "email"))
		v.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if !identity.ValidEmail(email) {
		// Kratos treats a non-email as a phone number it cannot reach and
		// still answers "sent" (observed): no enumeration either way.
		v.verificationSent(f, email)
		f.UI.Messages = []node.Text{node.NewText(1080004, nil)}
		v.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	if !v.kernel.ChallengeAddress(w, r, sub, flow.VerificationAddress, email) {
		return
	}
	v.verificationSent(f, email)
	v.kernel.Render(w, r, sub, http.StatusOK)
}

// verifyCode completes verification with a code.
func (v *Flow) verifyCode(w http.ResponseWriter, r *http.Request, sub *flow.Submission, code string) {
	f := sub.Flow
	ok, c, err := v.kernel.ConsumeCode(r, f, code)
	if err != nil {
		// A limit refusal (429, or 503 when the limits cannot be
		// checked), else an internal error.
		v.kernel.Refuse(w, r, sub, flow.AsError(err, "unable to check the code"))
		return
	}
	sub.Flow = f
	if !ok && f.State == "passed_challenge" {
		f.UI.Messages = []node.Text{node.NewText(4070002, nil)}
		v.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if !ok {
		v.kernel.Events().Emit(r, event.Event{Type: event.VerificationFailed, Flow: "verification", Method: "code",
			Reason: "4070006", Actor: event.ActorSelf})
		addr := ""
		if c != nil {
			addr = c.Address
		} else if n := f.UI.Find("email"); n != nil {
			addr, _ = n.Input().Value.(string)
		}
		v.verificationSent(f, addr)
		f.KeepTransient()
		f.UI.Messages = []node.Text{node.NewText(4070006, nil)}
		v.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	v.completeVerification(w, r, sub, c.IdentityID, c.Address)
}

// completeVerification marks the address verified and renders success.
func (v *Flow) completeVerification(w http.ResponseWriter, r *http.Request, sub *flow.Submission, identityID, address string) {
	f := sub.Flow
	if err := v.kernel.MarkVerified(r.Context(), identityID, address); err != nil {
		v.logger.Error("marking address verified", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the identity"))
		return
	}
	v.kernel.Events().Emit(r, event.Event{Type: event.VerificationCompleted, Flow: "verification", Method: v.cfg.VerificationUse,
		IdentityID: identityID, Identifier: v.kernel.Events().HashIdentifier(address), Actor: event.ActorSelf})
	to := v.kernel.ReturnTo(r, f)
	f.State = "passed_challenge"
	f.UI.Action, f.UI.Method = to, "GET"
	a := &node.Node{Type: "a", Group: v.cfg.VerificationUse, Messages: []node.Text{}, Meta: node.Meta{Label: node.Label(1070009, nil)},
		Attributes: &node.AnchorAttrs{ID: "continue", Href: to, Title: node.NewText(1070009, nil), NodeType: "a"}}
	f.UI.Nodes = []*node.Node{node.CSRF(""), a}
	f.UI.Messages = []node.Text{node.NewText(1080002, nil)}
	v.kernel.Render(w, r, sub, http.StatusOK)
}

// --- links ---

// Link serves GET /self-service/verification?flow=&code=|token=
// (the link in the mail).
func (v *Flow) Link(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := v.kernel.Load(r.Context(), q.Get("flow"), "verification")
	if err != nil {
		v.kernel.WriteError(w, r, "browser", wire.NotFound())
		return
	}
	// A link is opened by a browser, whatever kind the flow is.
	sub := &flow.Submission{Flow: f, JSON: !wire.PrefersHTML(r), ToUI: wire.PrefersHTML(r)}
	if v.now().After(f.ExpiresAt) {
		v.kernel.ReplaceExpired(w, r, sub)
		return
	}
	f.UI.ResetMessages()
	if f.State == "passed_challenge" {
		v.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	if code := q.Get("code"); code != "" {
		v.verifyCode(w, r, sub, code)
		return
	}
	lt, err := v.kernel.TakeLinkToken(r.Context(), "vtok", q.Get("token"))
	if err != nil || lt.FlowID != f.ID {
		v.verificationForm(f)
		f.UI.Messages = []node.Text{node.NewText(4070001, nil)}
		v.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	// Another token of this flow may have completed it meanwhile.
	won, err := v.kernel.Pass(r.Context(), f)
	if err != nil {
		v.logger.Error("verification link", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	if !won {
		v.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	v.completeVerification(w, r, sub, lt.IdentityID, lt.Address)
}

// SendForAddress starts a verification flow for a new address
// (after registration or a profile change) and adds show_verification_ui
// to src's continue_with.
func (v *Flow) SendForAddress(r *http.Request, ident *sessionstore.Identity, a sessionstore.VerifiableAddress, src *flow.Flow) {
	if !v.cfg.VerificationEnabled || a.Via != "email" {
		return
	}
	// These mails count against the same per-address and per-IP limits as
	// the ones a client asks for; over a limit the change or sign-up still
	// succeeds, without the mail (the verification flow can send it later).
	if lerr := v.kernel.LimitSend(r, a.Value); lerr != nil {
		v.logger.Warn("verification mail not sent: mail limit reached", zap.Int("status", lerr.Code))
		return
	}
	typ := "browser"
	if src != nil && src.Type == "api" {
		typ = "api"
	}
	vf := v.kernel.NewFlow(r, "verification", typ)
	vf.RequestURL = v.urls.Public("self-service/verification/" + typ)
	if src != nil {
		vf.CSRFToken = src.CSRFToken
	}
	v.verificationForm(vf)
	if err := v.kernel.SendVerification(r, vf, ident, a.Value); err != nil {
		v.logger.Error("verification after registration", zap.Error(err))
		return
	}
	v.verificationSent(vf, a.Value)
	if typ == "browser" {
		v.kernel.SetCSRFNode(vf, vf.CSRFToken)
	}
	if err := v.kernel.Save(r.Context(), vf); err != nil {
		v.logger.Error("saving verification flow", zap.Error(err))
		return
	}
	item := map[string]any{"action": "show_verification_ui", "flow": map[string]any{"id": vf.ID, "verifiable_address": a.Value}}
	if typ == "browser" {
		item["flow"].(map[string]any)["url"] = wire.WithQuery(v.urls.UI("verification"), "flow", vf.ID)
	}
	if src != nil {
		src.ContinueWith = append(src.ContinueWith, item)
	}
}

// Flow is the verification flow (flow.Kind): an address is
// verified with a mailed code or link.
type Flow struct {
	cfg    Config
	kernel *flow.Kernel
	store  sessionstore.Storage
	urls   *wire.URLs
	logger *zap.Logger
	now    func() time.Time
}

// Config is what the verification flow takes from the
// configuration.
type Config struct {
	VerificationEnabled bool
	VerificationUse     string
}

// New returns the verification flow.
func New(cfg Config, k *flow.Kernel, store sessionstore.Storage, urls *wire.URLs, logger *zap.Logger,
	now func() time.Time) *Flow {
	return &Flow{cfg: cfg, kernel: k, store: store, urls: urls, logger: logger, now: now}
}

// Name is "verification".
func (v *Flow) Name() string { return "verification" }

// Disabled is the answer while verification is off.
func (v *Flow) Disabled() *wire.Error {
	if !v.cfg.VerificationEnabled {
		return ErrDisabled()
	}
	return nil
}
