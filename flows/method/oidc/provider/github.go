package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// githubIssuer is the iss Kratos gives GitHub's claims (its token URL).
const githubIssuer = "https://github.com/login/oauth/access_token"

// newGitHub is GitHub's OAuth app flow. GitHub is no OpenID provider: the
// profile comes from GET /user; the email, with whether GitHub verified it,
// from GET /user/emails (the primary address) when user:email (or user) was
// granted, as Kratos does. The public profile email of /user is never used:
// it is unverified and user-editable.
func newGitHub(b *base) *apiProvider {
	web := strings.TrimSuffix(b.opts.endpoints.github, "/")
	api := strings.TrimSuffix(b.opts.endpoints.githubAPI, "/")
	p := &apiProvider{base: b, authURL: web + "/login/oauth/authorize", tokenURL: web + "/login/oauth/access_token", scopeSep: ", ", pkceKnown: true}
	p.claims = func(ctx context.Context, tok *oauth2.Token, granted []string) (*Claims, error) {
		body, err := p.getJSON(ctx, api+"/user", tok.AccessToken, ErrClaims)
		if err != nil {
			return nil, fmt.Errorf("github /user: %w", err)
		}
		raw, err := decodeRaw(body)
		if err != nil {
			return nil, fmt.Errorf("%w: github /user: %v", ErrClaims, err)
		}
		str := func(k string) string { s, _ := raw[k].(string); return s }
		id, ok := raw["id"].(json.Number)
		if !ok {
			return nil, fmt.Errorf("%w: github /user has no numeric id", ErrClaims)
		}
		c := &Claims{
			Issuer: githubIssuer, Subject: id.String(), Name: str("name"), Nickname: str("login"),
			Website: str("blog"), Picture: str("avatar_url"), Profile: str("html_url"), RawClaims: raw,
		}
		if t, err := time.Parse(time.RFC3339, str("updated_at")); err == nil {
			c.UpdatedAt = t.Unix()
		}
		if !slices.Contains(granted, "user:email") && !slices.Contains(granted, "user") {
			return c, nil
		}
		body, err = p.getJSON(ctx, api+"/user/emails", tok.AccessToken, ErrClaims)
		if err != nil {
			return nil, fmt.Errorf("github /user/emails: %w", err)
		}
		var emails []struct {
			Email    string `json:"email"`
			Primary  bool   `json:"primary"`
			Verified bool   `json:"verified"`
		}
		if err := json.Unmarshal(body, &emails); err != nil {
			return nil, fmt.Errorf("%w: github /user/emails: %v", ErrClaims, err)
		}
		for _, e := range emails {
			if e.Primary {
				c.Email, c.EmailVerified = e.Email, e.Verified
				break
			}
		}
		return c, nil
	}
	return p
}
