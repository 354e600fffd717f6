package code

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Method is the code method. Answers for the "code sent" step are 200
// with the flow in state sent_email, as Kratos writes flows a strategy
// sends back to the UI.
type Method struct {
	cfg     Config
	kernel  *flow.Kernel
	store   sessionstore.Storage
	schemas *identity.Schemas
	logger  *zap.Logger
	now     func() time.Time
}

// Config is what the code method takes from the configuration.
type Config struct {
	// Enabled turns the method on (selfservice.methods.code.enabled).
	Enabled bool
	// Passwordless enables sign-in and sign-up with a mailed code.
	Passwordless bool
	// MFA enables a mailed code as a second factor.
	MFA bool
	// MitigateAccountEnumeration "sends" codes to unknown addresses too.
	MitigateAccountEnumeration bool
	// Lifespan is how long a mailed code is valid.
	Lifespan time.Duration
}

// New returns the code method over the kernel.
func New(cfg Config, k *flow.Kernel, store sessionstore.Storage, schemas *identity.Schemas, logger *zap.Logger,
	now func() time.Time) *Method {
	return &Method{cfg: cfg, kernel: k, store: store, schemas: schemas, logger: logger, now: now}
}

// ID is "code".
func (m *Method) ID() string { return "code" }

// Enabled reports whether the configuration turns the method on.
func (m *Method) Enabled() bool { return m.cfg.Enabled }

// FirstFactor is true: a mailed code signs in (code { passwordless }).
func (m *Method) FirstFactor() bool { return true }

// SecondFactor is true: a mailed code completes a second factor (code {
// mfa }); whether it counts is the assurance rule's call.
func (m *Method) SecondFactor() bool { return true }

// LoginNodes adds the code's sign-in button (aal1) or a button per
// address to mail a second-factor code to (aal2).
func (m *Method) LoginNodes(_ *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if f.RequestedAAL == "aal2" {
		m.mfaNodes(f, ident)
		return
	}
	m.loginNodes(f)
}

// Identifier-first login: a sign-in code can be asked for any account
// (Kratos counts the method for every identity while passwordless is on);
// an account with no other first factor gets its code at once (Fast).

// Offered reports whether identifier-first login offers a sign-in code.
func (m *Method) Offered(*http.Request, *flow.Flow) bool { return m.cfg.Passwordless && m.cfg.Enabled }

// Has is true for every account.
func (m *Method) Has(ident *sessionstore.Identity, _ string) bool { return ident != nil }

// FirstScreenNodes adds nothing.
func (m *Method) FirstScreenNodes(*http.Request, *flow.Flow) {}

// SecondScreenNodes adds the sign-in button.
func (m *Method) SecondScreenNodes(_ *http.Request, f *flow.Flow) {
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("code", "method", "code", node.Label(1010015, nil)))
}

// Fast is true: the code is mailed at once when it is the only method.
func (m *Method) Fast() bool { return true }

// Interface guards.
var (
	_ flow.LoginMethod           = (*Method)(nil)
	_ flow.IdentifierFirstMethod = (*Method)(nil)
	_ flow.RegistrationMethod    = (*Method)(nil)
)

func (m *Method) loginNodes(f *flow.Flow) {
	if !m.cfg.Passwordless {
		return
	}
	if f.UI.Find("identifier") == nil {
		f.UI.Nodes = append(f.UI.Nodes, node.Input("default", "identifier", "text", m.schemas.Default().IdentifierLabel("code")).Value("").Required())
	}
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("code", "method", "code", node.Label(1010015, nil)))
}

// codeMFAActive: with code { mfa }, any email address of the identity can
// receive a second-factor code (whether it counts is the assurance rule's
// call, flows/session).
func (m *Method) HasActive(ident *sessionstore.Identity) bool {
	if !m.cfg.MFA || !m.cfg.Enabled {
		return false
	}
	for _, a := range ident.VerifiableAddresses {
		if a.Via == "email" {
			return true
		}
	}
	return false
}

func (m *Method) mfaNodes(f *flow.Flow, ident *sessionstore.Identity) {
	if !m.cfg.MFA || ident == nil {
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

// sentNodes is the login form once a code is on its way.
func (m *Method) sentNodes(f *flow.Flow, identifier string, mfa bool) {
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
func (m *Method) findIdentity(r *http.Request, identifier string) (*sessionstore.Identity, string, error) {
	id := identity.NormalizeIdentifier(identifier)
	for _, t := range []string{"code", "password", sessionstore.AddressIndexType("verification", "email"), sessionstore.AddressIndexType("recovery", "email")} {
		ident, err := m.store.FindIdentityByCredential(r.Context(), t, id)
		if err == nil {
			return ident, id, nil
		}
		if !errors.Is(err, sessionstore.ErrNotFound) {
			return nil, "", err
		}
	}
	return nil, id, sessionstore.ErrNotFound
}

// Login mails a code (step one, or resend) or checks the one submitted:
// a first-factor sign-in claims the address, a second factor verifies it.
func (m *Method) Login(_ http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	f := st.Sub.Flow
	mfa := f.RequestedAAL == "aal2"
	if mfa && !m.cfg.MFA || !mfa && !m.cfg.Passwordless {
		f.UI.Messages = []node.Text{node.NewText(4010002, nil)}
		return nil, nil
	}
	body := st.Sub.Body
	code := strings.TrimSpace(wire.BodyString(body, "code"))
	if code != "" && wire.BodyString(body, "resend") != "code" {
		ok, c, err := m.kernel.ConsumeCode(r, f, code)
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
			m.sentNodes(f, addr, mfa)
			f.UI.Messages = []node.Text{node.NewText(4010008, nil)}
			return nil, nil
		}
		// Signing in with a mailed code proves the address; as the first
		// factor it also claims an account whose address was never proven
		// (ClaimAddress). As a second factor it only verifies it.
		if mfa {
			_ = m.kernel.MarkVerified(r.Context(), c.IdentityID, c.Address)
		} else {
			keep := ""
			if st.Session != nil {
				keep = st.Session.ID // a refresh: the caller's own session
			}
			if _, err := m.kernel.ClaimAddress(r.Context(), c.IdentityID, c.Address, keep); err != nil {
				m.logger.Error("code sign-in", zap.Error(err))
				return nil, wire.StoreError(err, "unable to store the identity")
			}
		}
		ident, err := m.store.GetIdentity(r.Context(), c.IdentityID)
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
		if m.cfg.MitigateAccountEnumeration {
			// Known and unknown addresses take the same time.
			defer flow.PadSince(time.Now(), flow.AddressChallengeFloor)
		}
		var err error
		ident, address, err = m.findIdentity(r, identifier)
		if errors.Is(err, sessionstore.ErrNotFound) {
			if m.cfg.MitigateAccountEnumeration {
				return m.sentNowhere(r, f, address)
			}
			f.UI.SetValue("identifier", identifier)
			f.UI.Messages = []node.Text{node.NewText(4000035, nil)}
			return nil, nil
		}
		if err != nil {
			return nil, wire.StoreError(err, "unable to look up the account")
		}
	}
	if lerr := m.kernel.LimitSend(r, address); lerr != nil {
		return nil, lerr
	}
	code = flow.NewCode()
	f.SetChallenge(&flow.Challenge{MAC: m.kernel.CodeMAC(f.ID, code), Address: address, IdentityID: ident.ID,
		ExpiresAt: m.now().Add(m.cfg.Lifespan)})
	if err := m.kernel.SendMail(r.Context(), flow.Mail{To: address, Template: "login_code_valid", LoginCode: code,
		Identity: m.kernel.MailIdentity(r, ident), RequestURL: f.RequestURL, TransientPayload: f.TransientPayload,
		ExpiresInMinutes: int(m.cfg.Lifespan.Minutes())}); err != nil {
		return nil, wire.StoreError(err, "unable to send the code")
	}
	m.sentNodes(f, address, mfa)
	f.UI.Messages = []node.Text{node.NewText(1010014, nil)}
	return nil, flow.ErrShowFlow
}

// RegistrationNodes adds the sign-up-with-a-code button.
func (m *Method) RegistrationNodes(_ *http.Request, f *flow.Flow, _ map[string]any) {
	if !m.cfg.Passwordless {
		return
	}
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("code", "method", "code", node.Label(1040006, nil)))
}

// codeAddress is the address a sign-up code goes to: the trait marked as
// the code identifier, else the first email verification address.
func codeAddress(sch *identity.Schema, traits map[string]any) string {
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

// Register mails a code to the new account's address, then checks it:
// the address it proves starts out verified.
func (m *Method) Register(r *http.Request, st *flow.RegistrationState) flow.RegistrationOutcome {
	f := st.Sub.Flow
	if !m.cfg.Passwordless {
		f.UI.Messages = []node.Text{node.NewText(4010003, nil)}
		return flow.RegistrationOutcome{Invalid: true}
	}
	address := codeAddress(m.kernel.FlowSchema(f), st.Traits)
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
		f.UI.Nodes = append(f.UI.Nodes, m.kernel.FlowSchema(f).TraitNodes("default", st.Traits, true)...)
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
		ok, c, err := m.kernel.ConsumeCode(r, f, code)
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
		now := m.now().UTC()
		creds := map[string]sessionstore.Credential{"code": {Type: "code", Identifiers: []string{address},
			Config:    identity.EncodeConfig(map[string]any{"addresses": []map[string]string{{"channel": "email", "address": address}}}),
			CreatedAt: now, UpdatedAt: now}}
		return flow.RegistrationOutcome{Creds: creds, Verified: []string{address}}
	}
	if lerr := m.kernel.LimitSend(r, address); lerr != nil {
		return flow.RegistrationOutcome{Err: lerr}
	}
	code = flow.NewCode()
	f.SetChallenge(&flow.Challenge{MAC: m.kernel.CodeMAC(f.ID, code), Address: address, ExpiresAt: m.now().Add(m.cfg.Lifespan)})
	if err := m.kernel.SendMail(r.Context(), flow.Mail{To: address, Template: "registration_code_valid", RegistrationCode: code,
		Identity: map[string]any{"traits": st.Traits}, RequestURL: f.RequestURL, TransientPayload: f.TransientPayload,
		ExpiresInMinutes: int(m.cfg.Lifespan.Minutes())}); err != nil {
		return flow.RegistrationOutcome{Err: wire.StoreError(err, "unable to send the code")}
	}
	sentNodes()
	f.UI.Messages = []node.Text{node.NewText(1040005, nil)}
	return flow.RegistrationOutcome{Show: true}
}

// decoyChallengeMAC is the MAC of a code challenge for an unknown address:
// no code's MAC (64 hex digits) is ever equal to it.
const decoyChallengeMAC = "-"

// codeSentNowhere answers a sign-in code request for an address that
// belongs to no account as if a code had been mailed to it.
func (m *Method) sentNowhere(r *http.Request, f *flow.Flow, address string) (*sessionstore.Identity, *wire.Error) {
	if lerr := m.kernel.LimitSend(r, address); lerr != nil {
		return nil, lerr
	}
	f.SetChallenge(&flow.Challenge{MAC: decoyChallengeMAC, Address: address, ExpiresAt: m.now().Add(m.cfg.Lifespan)})
	// What queuing the mail costs a known address: one durable write.
	if err := m.store.PutRecord(r.Context(), flow.DecoyNS, token.RandomString(16, token.Alnum), token.RandomBytes(4<<10), time.Second); err != nil {
		m.logger.Error("decoy write", zap.Error(err))
		return nil, wire.StoreError(err, "unable to send the code")
	}
	m.sentNodes(f, address, false)
	f.UI.Messages = []node.Text{node.NewText(1010014, nil)}
	return nil, flow.ErrShowFlow
}
