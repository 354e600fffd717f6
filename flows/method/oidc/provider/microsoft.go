package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/oauth2"
)

// consumersTenant is the tenant id of personal Microsoft accounts.
const consumersTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// newMicrosoft is the Microsoft identity platform (v2.0) for one tenant
// setting. The metadata of common and organizations names the issuer as a
// template, https://login.microsoftonline.com/{tenantid}/v2.0: each ID token
// is verified against the template filled with its own tid (a UUID), so a
// token must carry its tenant's issuer exactly. A specific tenant (id or
// domain) has a concrete issuer, which tokens of other tenants do not match;
// organizations refuses personal accounts; consumers admits only them.
// Microsoft's email claim is not verified (any tenant admin can set it), so
// email_verified is only true when the token says so, or when the optional
// xms_edov claim says the email's domain is verified by the tenant.
func newMicrosoft(b *base) *oidcProvider {
	p := &oidcProvider{
		base:         b,
		discoveryURL: strings.TrimSuffix(b.opts.endpoints.microsoft, "/") + "/" + b.cfg.MicrosoftTenant + "/v2.0",
		pkceKnown:    true,
	}
	p.issuerFor = func(d *discovered, unverified map[string]any) (string, error) {
		tid, _ := unverified["tid"].(string)
		if !uuidPattern.MatchString(tid) {
			return "", fmt.Errorf("%w: the tid claim %q is not a tenant id", ErrToken, tid)
		}
		switch strings.ToLower(p.cfg.MicrosoftTenant) {
		case "organizations":
			if strings.EqualFold(tid, consumersTenant) {
				return "", fmt.Errorf("%w: personal Microsoft accounts may not sign in (microsoft_tenant organizations)", ErrNotAllowed)
			}
		case "consumers":
			if !strings.EqualFold(tid, consumersTenant) {
				return "", fmt.Errorf("%w: only personal Microsoft accounts may sign in (microsoft_tenant consumers)", ErrNotAllowed)
			}
		}
		return strings.ReplaceAll(d.Issuer, "{tenantid}", tid), nil
	}
	p.after = func(ctx context.Context, r *Result, tok *oauth2.Token, _ Callback) error {
		c := r.Claims
		if c.Email != "" && !c.EmailVerified && boolClaim(c.RawClaims["xms_edov"]) {
			c.EmailVerified = true
		}
		if p.cfg.SubjectSource != SubjectSourceMe {
			return nil
		}
		body, err := p.getJSON(ctx, strings.TrimSuffix(p.opts.endpoints.graph, "/")+"/v1.0/me", tok.AccessToken, ErrClaims)
		if err != nil {
			return fmt.Errorf("graph /me: %w", err)
		}
		var me struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &me); err != nil || me.ID == "" {
			return fmt.Errorf("%w: graph /me has no id", ErrClaims)
		}
		c.Subject = me.ID
		return nil
	}
	return p
}
