package login

import (
	"context"
	"errors"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"
)

// Identifier-first login (Kratos's selfservice.flows.login.style:
// identifier_first). The first screen asks only for the identifier
// (method=identifier_first); its submit answers the same flow (400, or 303
// to the UI) with the identifier hidden and the first factors the account
// can use. With MitigateAccountEnumeration the second screen shows every
// enabled first factor whatever the identifier, and the identity is not
// even looked up, so neither the answer nor its timing tells whether the
// account exists.

// identifierFirstNodes is the first screen of an aal1 login flow: the
// identifier and Continue, plus what offered methods add (the passkey
// challenge for the browser's autofill). One identifier input, whatever
// the methods.
func (l *Flow) identifierFirstNodes(r *http.Request, f *flow.Flow) {
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("default", "identifier", "text", l.schemas.Default().IdentifierLabel("password")).Value("").Required(),
		node.Submit("identifier_first", "method", "identifier_first", node.Label(1070009, nil)))
	for _, m := range l.idFirstMethods {
		if m.Offered(r, f) {
			m.FirstScreenNodes(r, f)
		}
	}
}

// loginIdentifierFirst answers method=identifier_first: the second
// screen, or the fast path of an account with one method, or (without
// enumeration mitigation) 4000037 for an identifier with no account.
func (l *Flow) loginIdentifierFirst(w http.ResponseWriter, r *http.Request, sub *flow.Submission, sess *sessionstore.Session) {
	f := sub.Flow
	if l.cfg.LoginStyle != "identifier_first" || f.RequestedAAL == "aal2" || f.SessionID != "" {
		// Not a step of this flow (second factor, re-authentication of a
		// session): as Kratos answers a method no strategy is
		// responsible for.
		f.UI.Messages = []node.Text{node.NewText(4010002, nil)}
		l.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	identifier := wire.BodyString(sub.Body, "identifier")
	if identifier == "" {
		f.UI.AddNodeMessage("identifier", node.NewText(4000002, map[string]any{"property": "identifier"}, "identifier"))
		l.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	mitigate := l.cfg.MitigateAccountEnumeration
	var ident *sessionstore.Identity
	if !mitigate {
		var err error
		ident, err = l.findLoginIdentity(r.Context(), identifier)
		if err != nil && !errors.Is(err, sessionstore.ErrNotFound) {
			l.logger.Error("identifier-first lookup", zap.Error(err))
			wire.WriteError(w, r, wire.StoreError(err, "unable to look up the account"))
			return
		}
	}
	var shown []flow.IdentifierFirstMethod
	for _, m := range l.idFirstMethods {
		if m.Offered(r, f) && (mitigate || ident != nil && m.Has(ident, identifier)) {
			shown = append(shown, m)
		}
	}
	if len(shown) == 0 {
		// No account, or none this flow can sign in to (Kratos's
		// NewAccountNotFoundError, on the identifier).
		f.UI.SetValue("identifier", identifier)
		f.UI.AddNodeMessage("identifier", node.NewText(4000037, nil))
		l.kernel.Render(w, r, sub, http.StatusBadRequest)
		return
	}
	if !mitigate && len(shown) == 1 && shown[0].Fast() {
		for _, lm := range l.loginMethods {
			if lm.ID() == shown[0].ID() && lm.FirstFactor() {
				l.loginWith(w, r, sub, sess, lm)
				return
			}
		}
	}
	csrf := ""
	if n := f.UI.Find("csrf_token"); n != nil {
		csrf, _ = n.Input().Value.(string)
	}
	// The identifier stays in the form, hidden, for every method's submit.
	f.UI.Nodes = []*node.Node{node.CSRF(csrf),
		node.Input("default", "identifier", "hidden", l.schemas.Default().IdentifierLabel("password")).
			Value(identifier).Required().Autocomplete("username webauthn")}
	for _, m := range shown {
		m.SecondScreenNodes(r, f)
	}
	f.Active, f.State = "identifier_first", "choose_method"
	l.kernel.Render(w, r, sub, http.StatusBadRequest)
}

// findLoginIdentity finds the account an identifier names: a credential
// identifier (Kratos looks through all of them) or one of its addresses
// (an account made with a passkey is known by its address).
func (l *Flow) findLoginIdentity(ctx context.Context, identifier string) (*sessionstore.Identity, error) {
	id := identity.NormalizeIdentifier(identifier)
	for _, t := range []string{"password", "code", "webauthn",
		sessionstore.AddressIndexType("verification", "email"), sessionstore.AddressIndexType("recovery", "email")} {
		ident, err := l.store.FindIdentityByCredential(ctx, t, id)
		if err == nil {
			return ident, nil
		}
		if !errors.Is(err, sessionstore.ErrNotFound) {
			return nil, err
		}
	}
	return nil, sessionstore.ErrNotFound
}
