package flows

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// The code method: sign-in and sign-up with a mailed one-time code
// (Config.CodePasswordless) and a mailed code as a second factor
// (Config.CodeMFA). Answers for the "code sent" step are 200 with the flow
// in state sent_email, as Kratos writes flows a strategy sends back to the
// UI.

func codeLoginNodes(e *Engine, r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if !e.cfg.CodePasswordless {
		return
	}
	if f.UI.Find("identifier") == nil {
		f.UI.Nodes = append(f.UI.Nodes, node.Input("default", "identifier", "text", e.schemas.Default().IdentifierLabel("code")).Value("").Required())
	}
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("code", "method", "code", node.Label(1010015, nil)))
}

// codeMFAActive: with code { mfa }, any email address of the identity can
// receive a second-factor code (whether it counts is the assurance rule's
// call, mfa.go).
func codeMFAActive(e *Engine, ident *sessionstore.Identity) bool {
	if !e.cfg.CodeMFA || !e.methodEnabled("code") {
		return false
	}
	for _, a := range ident.VerifiableAddresses {
		if a.Via == "email" {
			return true
		}
	}
	return false
}

func codeMFANodes(e *Engine, r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if !e.cfg.CodeMFA || ident == nil {
		return
	}
	for _, a := range ident.VerifiableAddresses {
		if a.Via != "email" {
			continue
		}
		f.UI.Nodes = append(f.UI.Nodes, node.Submit("code", "address", a.Value,
			node.Label(1010023, map[string]any{"address": a.Value, "channel": a.Via}, a.Value)))
	}
}

// codeSentNodes is the login form once a code is on its way.
func (e *Engine) codeSentNodes(f *flow.Flow, identifier string, mfa bool) {
	csrf := ""
	if n := f.UI.Find("csrf_token"); n != nil {
		csrf, _ = n.Input().Value.(string)
	}
	f.UI.Nodes = []*node.Node{node.CSRF(csrf)}
	if mfa {
		f.UI.Nodes = append(f.UI.Nodes, node.Input("code", "address", "hidden", nil).Value(identifier))
	} else {
		f.UI.Nodes = append(f.UI.Nodes, node.Input("default", "identifier", "hidden", nil).Value(identifier))
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("code", "code", "text", node.Label(1070013, nil)).Required().Autocomplete("one-time-code"),
		node.Submit("code", "method", "code", node.Label(1070009, nil)),
		node.Submit("code", "resend", "code", node.Label(1070008, nil)))
	f.State = "sent_email"
}

// findCodeIdentity finds the identity an identifier (email) belongs to.
func (e *Engine) findCodeIdentity(r *http.Request, identifier string) (*sessionstore.Identity, string, error) {
	id := identity.NormalizeIdentifier(identifier)
	for _, t := range []string{"code", "password", sessionstore.AddressIndexType("verification", "email"), sessionstore.AddressIndexType("recovery", "email")} {
		ident, err := e.store.FindIdentityByCredential(r.Context(), t, id)
		if err == nil {
			return ident, id, nil
		}
		if !errors.Is(err, sessionstore.ErrNotFound) {
			return nil, "", err
		}
	}
	return nil, id, sessionstore.ErrNotFound
}

func codeLoginVerify(e *Engine, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	f := st.Sub.Flow
	mfa := f.RequestedAAL == "aal2"
	if mfa && !e.cfg.CodeMFA || !mfa && !e.cfg.CodePasswordless {
		f.UI.Messages = []node.Text{node.NewText(4010002, nil)}
		return nil, nil
	}
	body := st.Sub.Body
	code := strings.TrimSpace(wire.BodyString(body, "code"))
	if code != "" && wire.BodyString(body, "resend") != "code" {
		ok, c, err := e.kernel.ConsumeCode(r, f, code)
		if err != nil {
			return nil, flow.AsError(err, "unable to check the code")
		}
		st.Sub.Flow = f
		if !ok && f.State == "passed_challenge" {
			f.UI.Messages = []node.Text{node.NewText(4010007, nil)}
			return nil, nil
		}
		if !ok || c == nil {
			addr := ""
			if c != nil {
				addr = c.Address
			}
			e.codeSentNodes(f, addr, mfa)
			f.UI.Messages = []node.Text{node.NewText(4010008, nil)}
			return nil, nil
		}
		// Signing in with a mailed code proves the address; as the first
		// factor it also claims an account whose address was never proven
		// (claimAddress). As a second factor it only verifies it.
		if mfa {
			_ = e.kernel.MarkVerified(r.Context(), c.IdentityID, c.Address)
		} else {
			keep := ""
			if st.Session != nil {
				keep = st.Session.ID // a refresh: the caller's own session
			}
			if _, err := e.kernel.ClaimAddress(r.Context(), c.IdentityID, c.Address, keep); err != nil {
				e.logger.Error("code sign-in", zap.Error(err))
				return nil, wire.StoreError(err, "unable to store the identity")
			}
		}
		ident, err := e.store.GetIdentity(r.Context(), c.IdentityID)
		if err != nil {
			return nil, wire.StoreError(err, "unable to load the identity")
		}
		return ident, nil
	}
	// Step one (or resend): send a code.
	var ident *sessionstore.Identity
	var address string
	if mfa {
		address = strings.ToLower(strings.TrimSpace(wire.BodyString(body, "address")))
		if address == "" {
			if ch := f.Challenge(); ch != nil {
				address = ch.Address
			}
		}
		ident = st.Identity
		found := false
		for _, a := range ident.VerifiableAddresses {
			if a.Value == address {
				found = true
			}
		}
		if !found {
			f.UI.Messages = []node.Text{node.NewText(4010010, nil)}
			return nil, nil
		}
	} else {
		identifier := wire.BodyString(body, "identifier")
		if identifier == "" {
			if ch := f.Challenge(); ch != nil {
				identifier = ch.Address
			}
		}
		if identifier == "" {
			f.UI.AddNodeMessage("identifier", node.NewText(4000002, map[string]any{"property": "identifier"}, "identifier"))
			return nil, nil
		}
		if e.cfg.MitigateAccountEnumeration {
			// Known and unknown addresses take the same time.
			defer flow.PadSince(time.Now(), flow.AddressChallengeFloor)
		}
		var err error
		ident, address, err = e.findCodeIdentity(r, identifier)
		if errors.Is(err, sessionstore.ErrNotFound) {
			if e.cfg.MitigateAccountEnumeration {
				return e.codeSentNowhere(r, f, address)
			}
			f.UI.SetValue("identifier", identifier)
			f.UI.Messages = []node.Text{node.NewText(4000035, nil)}
			return nil, nil
		}
		if err != nil {
			return nil, wire.StoreError(err, "unable to look up the account")
		}
	}
	if lerr := e.kernel.LimitSend(r, address); lerr != nil {
		return nil, lerr
	}
	code = flow.NewCode()
	f.SetChallenge(&flow.Challenge{MAC: e.kernel.CodeMAC(f.ID, code), Address: address, IdentityID: ident.ID,
		ExpiresAt: e.now().Add(e.cfg.CodeLifespan)})
	if err := e.kernel.SendMail(r.Context(), flow.Mail{To: address, Template: "login_code_valid", LoginCode: code,
		Identity: e.kernel.MailIdentity(r, ident), RequestURL: f.RequestURL, TransientPayload: f.TransientPayload,
		ExpiresInMinutes: int(e.cfg.CodeLifespan.Minutes())}); err != nil {
		return nil, wire.StoreError(err, "unable to send the code")
	}
	e.codeSentNodes(f, address, mfa)
	f.UI.Messages = []node.Text{node.NewText(1010014, nil)}
	return nil, flow.ErrShowFlow
}

func codeRegistrationNodes(e *Engine, r *http.Request, f *flow.Flow, traits map[string]any) {
	if !e.cfg.CodePasswordless {
		return
	}
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("code", "method", "code", node.Label(1040006, nil)))
}

// codeAddress is the address a sign-up code goes to: the trait marked as
// the code identifier, else the first email verification address.
func (e *Engine) codeAddress(sch *identity.Schema, traits map[string]any) string {
	if ids := sch.Identifiers(traits, "code"); len(ids) > 0 {
		return ids[0]
	}
	for _, f := range sch.Fields {
		if f.VerificationVia == "email" {
			if v, ok := identity.LookupPath(traits, f.Path); ok {
				if s, ok := v.(string); ok && s != "" {
					return identity.NormalizeIdentifier(s)
				}
			}
		}
	}
	return ""
}

func codeRegister(e *Engine, r *http.Request, st *flow.RegistrationState) flow.RegistrationOutcome {
	f := st.Sub.Flow
	if !e.cfg.CodePasswordless {
		f.UI.Messages = []node.Text{node.NewText(4010003, nil)}
		return flow.RegistrationOutcome{Invalid: true}
	}
	address := e.codeAddress(e.kernel.FlowSchema(f), st.Traits)
	if address == "" {
		f.UI.Messages = []node.Text{node.NewText(4000009, nil)}
		return flow.RegistrationOutcome{Invalid: true}
	}
	sentNodes := func() {
		csrf := ""
		if n := f.UI.Find("csrf_token"); n != nil {
			csrf, _ = n.Input().Value.(string)
		}
		f.UI.Nodes = []*node.Node{node.CSRF(csrf)}
		f.UI.Nodes = append(f.UI.Nodes, e.kernel.FlowSchema(f).TraitNodes("default", st.Traits, true)...)
		f.UI.Nodes = append(f.UI.Nodes,
			node.Input("code", "code", "text", node.Label(1070012, nil)).Required().Autocomplete("one-time-code"),
			node.Submit("code", "method", "code", node.Label(1070009, nil)),
			node.Submit("code", "resend", "code", node.Label(1070008, nil)))
		f.State = "sent_email"
		if f.Internal == nil {
			f.Internal = map[string]any{}
		}
		f.Internal["traits"] = st.Traits
	}
	code := strings.TrimSpace(wire.BodyString(st.Sub.Body, "code"))
	if code != "" && wire.BodyString(st.Sub.Body, "resend") != "code" {
		ok, c, err := e.kernel.ConsumeCode(r, f, code)
		if err != nil {
			return flow.RegistrationOutcome{Err: flow.AsError(err, "unable to check the code")}
		}
		st.Sub.Flow = f
		if !ok && f.State == "passed_challenge" {
			f.UI.Messages = []node.Text{node.NewText(4040002, nil)}
			return flow.RegistrationOutcome{Invalid: true}
		}
		if !ok || c == nil || c.Address != address {
			sentNodes()
			f.UI.Messages = []node.Text{node.NewText(4040003, nil)}
			return flow.RegistrationOutcome{Invalid: true}
		}
		now := e.now().UTC()
		creds := map[string]sessionstore.Credential{"code": {Type: "code", Identifiers: []string{address},
			Config:    identity.EncodeConfig(map[string]any{"addresses": []map[string]string{{"channel": "email", "address": address}}}),
			CreatedAt: now, UpdatedAt: now}}
		return flow.RegistrationOutcome{Creds: creds, Verified: []string{address}}
	}
	if lerr := e.kernel.LimitSend(r, address); lerr != nil {
		return flow.RegistrationOutcome{Err: lerr}
	}
	code = flow.NewCode()
	f.SetChallenge(&flow.Challenge{MAC: e.kernel.CodeMAC(f.ID, code), Address: address, ExpiresAt: e.now().Add(e.cfg.CodeLifespan)})
	if err := e.kernel.SendMail(r.Context(), flow.Mail{To: address, Template: "registration_code_valid", RegistrationCode: code,
		Identity: map[string]any{"traits": st.Traits}, RequestURL: f.RequestURL, TransientPayload: f.TransientPayload,
		ExpiresInMinutes: int(e.cfg.CodeLifespan.Minutes())}); err != nil {
		return flow.RegistrationOutcome{Err: wire.StoreError(err, "unable to send the code")}
	}
	sentNodes()
	f.UI.Messages = []node.Text{node.NewText(1040005, nil)}
	return flow.RegistrationOutcome{Show: true}
}

// In identifier-first login a sign-in code can be asked for any account
// (Kratos counts the method for every identity while passwordless is on);
// an account with no other first factor gets its code at once.
func codeIDFirst() *idFirstMethod {
	return &idFirstMethod{name: "code", fast: true,
		offered: func(e *Engine, _ *http.Request, _ *flow.Flow) bool {
			return e.cfg.CodePasswordless && e.methodEnabled("code")
		},
		has: func(_ *Engine, ident *sessionstore.Identity, _ string) bool { return ident != nil },
		second: func(_ *Engine, _ *http.Request, f *flow.Flow) {
			f.UI.Nodes = append(f.UI.Nodes, node.Submit("code", "method", "code", node.Label(1010015, nil)))
		}}
}
