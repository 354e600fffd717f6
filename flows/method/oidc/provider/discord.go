package provider

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/oauth2"
)

// discordIssuer is the iss Kratos gives Discord's claims.
const discordIssuer = "https://discord.com/api/v9/oauth2/"

// newDiscord is Discord's OAuth 2.0 with GET /users/@me (identify, email):
// verified says whether Discord verified the email. As in Kratos, Discord is
// asked not to prompt again (prompt=none) unless the flow forces a login.
func newDiscord(b *base) *apiProvider {
	api := strings.TrimSuffix(b.opts.endpoints.discord, "/")
	p := &apiProvider{base: b, authURL: api + "/oauth2/authorize", tokenURL: api + "/oauth2/token", scopeSep: " "}
	p.authExtra = func(st AuthState, _ AuthOptions) []oauth2.AuthCodeOption {
		if st.ForceLogin {
			return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "consent")}
		}
		return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none")}
	}
	p.claims = func(ctx context.Context, tok *oauth2.Token, _ []string) (*Claims, error) {
		body, err := p.getJSON(ctx, api+"/users/@me", tok.AccessToken, ErrClaims)
		if err != nil {
			return nil, fmt.Errorf("discord /users/@me: %w", err)
		}
		raw, err := decodeRaw(body)
		if err != nil {
			return nil, fmt.Errorf("%w: discord /users/@me: %v", ErrClaims, err)
		}
		str := func(k string) string { s, _ := raw[k].(string); return s }
		c := &Claims{
			Issuer: discordIssuer, Subject: str("id"), Nickname: str("username"), PreferredUsername: str("username"),
			Email: str("email"), EmailVerified: boolClaim(raw["verified"]), Locale: str("locale"), RawClaims: raw,
		}
		// Kratos's name is username#discriminator; accounts that moved to
		// unique usernames have discriminator "0", which adds nothing.
		c.Name = c.Nickname
		if d := str("discriminator"); d != "" && d != "0" {
			c.Name += "#" + d
		}
		if av := str("avatar"); av != "" && c.Subject != "" {
			ext := "png"
			if strings.HasPrefix(av, "a_") {
				ext = "gif"
			}
			c.Picture = fmt.Sprintf("https://cdn.discordapp.com/avatars/%s/%s.%s", c.Subject, av, ext)
		}
		return c, nil
	}
	return p
}
