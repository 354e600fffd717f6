package flows

import (
	"net/http"
	"net/mail"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Verification and recovery by code or link (issue: mail, verification,
// recovery). Both flows keep the pending code in flow.Internal.

func errVerificationDisabled() *wire.Error {
	return wire.FlowDisabled("Verification is not allowed because it was disabled.")
}

// verificationForm renders the choose_method screen.
func (e *verificationFlow) verificationForm(f *flow.Flow) {
	group := e.cfg.VerificationUse
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
func (e *verificationFlow) verificationSent(f *flow.Flow, address string) {
	group := e.cfg.VerificationUse
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

func (e *verificationFlow) initVerification(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
	if !e.cfg.VerificationEnabled {
		return nil, errVerificationDisabled()
	}
	returnTo, rerr := e.kernel.ValidateReturnTo(r, r.URL.Query().Get("return_to"))
	if rerr != nil {
		return nil, rerr
	}
	f := e.kernel.NewFlow(r, "verification", typ)
	f.ReturnTo = returnTo
	e.verificationForm(f)
	return f, nil
}

// validEmail is a syntactic check for submitted addresses.
func validEmail(s string) bool {
	if len(s) > 320 || strings.ContainsAny(s, " \r\n<>") {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s, "@")
}

func (e *verificationFlow) submitVerification(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	f := sub.Flow
	f.UI.ResetMessages()
	if !e.cfg.VerificationEnabled {
		e.kernel.WriteError(w, r, f.Type, errVerificationDisabled())
		return
	}
	if sub.Method != "code" && sub.Method != "link" || sub.Method != e.cfg.VerificationUse {
		if n := f.UI.Find("method"); n != nil {
			f.UI.AddNodeMessage("method", node.TextReason(4000001, "Could not find a strategy to verify your account with. Did you fill out the form correctly?"))
		} else {
			f.UI.Messages = []node.Text{node.NewText(4010006, nil)}
		}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if f.State == "passed_challenge" {
		f.UI.Messages = []node.Text{node.NewText(4070002, nil)}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if code := wire.BodyString(sub.Body, "code"); code != "" && sub.Method == "code" {
		e.verifyCode(w, r, sub, code)
		return
	}
	email := strings.ToLower(strings.TrimSpace(wire.BodyString(sub.Body, "email")))
	if email == "" {
		f.UI.AddNodeMessage("email", node.NewText(4000002, map[string]any{"property": "email"}, "email"))
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if !validEmail(email) {
		// Kratos treats a non-email as a phone number it cannot reach and
		// still answers "sent" (observed): no enumeration either way.
		e.verificationSent(f, email)
		f.UI.Messages = []node.Text{node.NewText(1080004, nil)}
		e.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	if !e.kernel.ChallengeAddress(w, r, sub, flow.VerificationAddress, email) {
		return
	}
	e.verificationSent(f, email)
	e.kernel.Render(w, r, sub, http.StatusOK)
}

// verifyCode completes verification with a code.
func (e *verificationFlow) verifyCode(w http.ResponseWriter, r *http.Request, sub *flow.Submission, code string) {
	f := sub.Flow
	ok, c, err := e.kernel.ConsumeCode(r, f, code)
	if err != nil {
		// A limit refusal (429, or 503 when the limits cannot be
		// checked), else an internal error.
		e.kernel.Refuse(w, r, sub, flow.AsError(err, "unable to check the code"))
		return
	}
	sub.Flow = f
	if !ok && f.State == "passed_challenge" {
		f.UI.Messages = []node.Text{node.NewText(4070002, nil)}
		e.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if !ok {
		addr := ""
		if c != nil {
			addr = c.Address
		} else if n := f.UI.Find("email"); n != nil {
			addr, _ = n.Input().Value.(string)
		}
		e.verificationSent(f, addr)
		f.KeepTransient()
		f.UI.Messages = []node.Text{node.NewText(4070006, nil)}
		e.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	e.completeVerification(w, r, sub, c.IdentityID, c.Address)
}

// completeVerification marks the address verified and renders success.
func (e *verificationFlow) completeVerification(w http.ResponseWriter, r *http.Request, sub *flow.Submission, identityID, address string) {
	f := sub.Flow
	if err := e.kernel.MarkVerified(r.Context(), identityID, address); err != nil {
		e.logger.Error("marking address verified", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the identity"))
		return
	}
	to := e.kernel.ReturnTo(r, f)
	f.State = "passed_challenge"
	f.UI.Action, f.UI.Method = to, "GET"
	a := &node.Node{Type: "a", Group: e.cfg.VerificationUse, Messages: []node.Text{}, Meta: node.Meta{Label: node.Label(1070009, nil)},
		Attributes: &node.AnchorAttrs{ID: "continue", Href: to, Title: node.NewText(1070009, nil), NodeType: "a"}}
	f.UI.Nodes = []*node.Node{node.CSRF(""), a}
	f.UI.Messages = []node.Text{node.NewText(1080002, nil)}
	e.kernel.Render(w, r, sub, http.StatusOK)
}

// --- links ---

// verificationLink serves GET /self-service/verification?flow=&code=|token=
// (the link in the mail).
func (e *verificationFlow) verificationLink(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := e.kernel.Load(r.Context(), q.Get("flow"), "verification")
	if err != nil {
		e.kernel.WriteError(w, r, "browser", wire.NotFound())
		return
	}
	// A link is opened by a browser, whatever kind the flow is.
	sub := &flow.Submission{Flow: f, JSON: !wire.PrefersHTML(r), ToUI: wire.PrefersHTML(r)}
	if e.now().After(f.ExpiresAt) {
		e.kernel.ReplaceExpired(w, r, sub)
		return
	}
	f.UI.ResetMessages()
	if f.State == "passed_challenge" {
		e.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	if code := q.Get("code"); code != "" {
		e.verifyCode(w, r, sub, code)
		return
	}
	lt, err := e.kernel.TakeLinkToken(r.Context(), "vtok", q.Get("token"))
	if err != nil || lt.FlowID != f.ID {
		e.verificationForm(f)
		f.UI.Messages = []node.Text{node.NewText(4070001, nil)}
		e.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	// Another token of this flow may have completed it meanwhile.
	won, err := e.kernel.Pass(r.Context(), f)
	if err != nil {
		e.logger.Error("verification link", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to store the flow"))
		return
	}
	if !won {
		e.kernel.Render(w, r, sub, http.StatusOK)
		return
	}
	e.completeVerification(w, r, sub, lt.IdentityID, lt.Address)
}

// sendVerificationForAddress starts a verification flow for a new address
// (after registration or a profile change) and adds show_verification_ui
// to src's continue_with.
func (e *verificationFlow) sendVerificationForAddress(r *http.Request, ident *sessionstore.Identity, a sessionstore.VerifiableAddress, src *flow.Flow) {
	if !e.cfg.VerificationEnabled || a.Via != "email" {
		return
	}
	// These mails count against the same per-address and per-IP limits as
	// the ones a client asks for; over a limit the change or sign-up still
	// succeeds, without the mail (the verification flow can send it later).
	if lerr := e.kernel.LimitSend(r, a.Value); lerr != nil {
		e.logger.Warn("verification mail not sent: mail limit reached", zap.Int("status", lerr.Code))
		return
	}
	typ := "browser"
	if src != nil && src.Type == "api" {
		typ = "api"
	}
	vf := e.kernel.NewFlow(r, "verification", typ)
	vf.RequestURL = e.urls.Public("self-service/verification/" + typ)
	if src != nil {
		vf.CSRFToken = src.CSRFToken
	}
	e.verificationForm(vf)
	if err := e.kernel.SendVerification(r, vf, ident, a.Value); err != nil {
		e.logger.Error("verification after registration", zap.Error(err))
		return
	}
	e.verificationSent(vf, a.Value)
	if typ == "browser" {
		e.kernel.SetCSRFNode(vf, vf.CSRFToken)
	}
	if err := e.kernel.Save(r.Context(), vf); err != nil {
		e.logger.Error("saving verification flow", zap.Error(err))
		return
	}
	item := map[string]any{"action": "show_verification_ui", "flow": map[string]any{"id": vf.ID, "verifiable_address": a.Value}}
	if typ == "browser" {
		item["flow"].(map[string]any)["url"] = wire.WithQuery(e.urls.UI("verification"), "flow", vf.ID)
	}
	if src != nil {
		src.ContinueWith = append(src.ContinueWith, item)
	}
}

// verificationFlow is the verification flow (flow.Kind): an address is
// verified with a mailed code or link.
type verificationFlow struct {
	cfg    verificationConfig
	kernel *flow.Kernel
	store  sessionstore.Storage
	urls   *wire.URLs
	logger *zap.Logger
	now    func() time.Time
}

// verificationConfig is what the verification flow takes from the
// configuration.
type verificationConfig struct {
	VerificationEnabled bool
	VerificationUse     string
}

// newVerificationFlow returns the verification flow.
func newVerificationFlow(cfg verificationConfig, k *flow.Kernel, store sessionstore.Storage, urls *wire.URLs, logger *zap.Logger,
	now func() time.Time) *verificationFlow {
	return &verificationFlow{cfg: cfg, kernel: k, store: store, urls: urls, logger: logger, now: now}
}

// Name is "verification".
func (e *verificationFlow) Name() string { return "verification" }

// Init builds a new verification flow.
func (e *verificationFlow) Init(r *http.Request, typ string) (*flow.Flow, *wire.Error) {
	return e.initVerification(r, typ)
}

// Submit handles updateVerificationFlow.
func (e *verificationFlow) Submit(w http.ResponseWriter, r *http.Request, sub *flow.Submission) {
	e.submitVerification(w, r, sub)
}

// Disabled is the answer while verification is off.
func (e *verificationFlow) Disabled() *wire.Error {
	if !e.cfg.VerificationEnabled {
		return errVerificationDisabled()
	}
	return nil
}
