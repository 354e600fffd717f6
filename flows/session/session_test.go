package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// methods are completed methods by name: totp, lookup_secret, webauthn2
// and code2 at aal2, everything else at aal1.
func methods(names ...string) []sessionstore.AuthMethod {
	var out []sessionstore.AuthMethod
	for _, n := range names {
		aal := "aal1"
		switch n {
		case "totp", "lookup_secret", "webauthn2", "code2":
			aal = "aal2"
		}
		switch n {
		case "webauthn2":
			n = "webauthn"
		case "code2":
			n = "code"
		}
		out = append(out, sessionstore.AuthMethod{Method: n, AAL: aal})
	}
	return out
}

// TestAssuranceRule is the rule of aal.go as a table: the session's level
// and the verdict of each policy.
func TestAssuranceRule(t *testing.T) {
	strong, mail := FactorStrong, FactorMailbox
	for _, tc := range []struct {
		name    string
		ms      []sessionstore.AuthMethod
		fs      FactorSet
		level   string
		highest error // highest_available
		aal2    error
	}{
		{"password only, no factor", methods("password"), 0, "aal1", nil, ErrAAL2SetupRequired},
		{"password, totp linked", methods("password"), strong, "aal1", ErrAAL2Required, ErrAAL2Required},
		{"password+totp", methods("password", "totp"), strong, "aal2", nil, nil},
		{"password, mailed code possible", methods("password"), mail, "aal1", ErrAAL2Required, ErrAAL2Required},
		{"password+code", methods("password", "code2"), mail, "aal2", nil, nil},
		// Item 3: the mailbox twice is one factor.
		{"code_recovery+code", methods("code_recovery", "code2"), mail, "aal1", nil, ErrAAL2SetupRequired},
		{"link_recovery+code", methods("link_recovery", "code2"), mail, "aal1", nil, ErrAAL2SetupRequired},
		{"code+code", methods("code", "code2"), mail, "aal1", nil, ErrAAL2SetupRequired},
		{"code_recovery+code, totp linked", methods("code_recovery", "code2"), strong | mail, "aal1", ErrAAL2Required, ErrAAL2Required},
		{"code_recovery, totp linked", methods("code_recovery"), strong | mail, "aal1", ErrAAL2Required, ErrAAL2Required},
		{"code+code, totp linked", methods("code", "code2"), strong | mail, "aal1", ErrAAL2Required, ErrAAL2Required},
		// A strong factor must be used once the identity has one.
		{"password+code, totp linked", methods("password", "code2"), strong | mail, "aal1", ErrAAL2Required, ErrAAL2Required},
		{"code_recovery+totp", methods("code_recovery", "totp"), strong, "aal2", nil, nil},
		{"code+lookup", methods("code", "lookup_secret"), strong | mail, "aal2", nil, nil},
		// A refresh with the password makes the mailed code count again.
		{"code_recovery+password+code", methods("code_recovery", "password", "code2"), mail, "aal2", nil, nil},
		{"passkey+webauthn key", methods("passkey", "webauthn2"), strong, "aal2", nil, nil},
		{"no methods", nil, 0, "aal0", nil, ErrAAL2SetupRequired},
	} {
		if got := methodsAAL(tc.ms, tc.fs); got != tc.level {
			t.Errorf("%s: level %s, want %s", tc.name, got, tc.level)
		}
		if _, err := assess(tc.ms, tc.fs, "aal1"); err != nil {
			t.Errorf("%s: aal1: %v", tc.name, err)
		}
		if _, err := assess(tc.ms, tc.fs, "highest_available"); !errors.Is(err, tc.highest) || (err == nil) != (tc.highest == nil) {
			t.Errorf("%s: highest_available: %v, want %v", tc.name, err, tc.highest)
		}
		if _, err := assess(tc.ms, tc.fs, "aal2"); !errors.Is(err, tc.aal2) || (err == nil) != (tc.aal2 == nil) {
			t.Errorf("%s: aal2: %v, want %v", tc.name, err, tc.aal2)
		}
	}
	// The stored level never counts the mailbox twice either.
	if got := sessionAAL(methods("code_recovery", "code2")); got != "aal1" {
		t.Errorf("stored level of code_recovery+code: %s", got)
	}
}

func TestSessionsLinkMatchesKratos(t *testing.T) {
	// The Link of spec/samples/25-sessions-list.json (per_page=1&page=0,
	// two other sessions).
	want := `</sessions?page=1&page_size=1&page_token=eyJvZmZzZXQiOiIxIiwidiI6Mn0&per_page=1>; rel="next",` +
		`</sessions?page=1&page_size=1&page_token=eyJvZmZzZXQiOiIxIiwidiI6Mn0&per_page=1>; rel="last"`
	if got := wire.FormatLinks(sessionsLinks(0, 1, 2)...); got != want {
		t.Fatalf("Link\n got %s\nwant %s", got, want)
	}
	for _, c := range []struct {
		page, size, total int
		rels              []string
	}{
		{0, 250, 2, []string{"first"}},
		{0, 250, 0, []string{"first"}},
		{0, 1, 3, []string{"next", "last"}},
		{1, 1, 3, []string{"first", "next", "prev", "last"}},
		{2, 1, 3, []string{"first", "prev"}},
		{9, 1, 3, []string{"first", "prev"}},
	} {
		got := wire.FormatLinks(sessionsLinks(c.page, c.size, c.total)...)
		var rels []string
		for _, part := range strings.Split(got, ",") {
			_, rel, _ := strings.Cut(part, `rel="`)
			rels = append(rels, strings.TrimSuffix(rel, `"`))
		}
		if strings.Join(rels, ",") != strings.Join(c.rels, ",") {
			t.Errorf("page %d size %d total %d: rels %v, want %v (%s)", c.page, c.size, c.total, rels, c.rels, got)
		}
	}
	// Single page: first carries the size of what it holds, as Kratos's does.
	if got := wire.FormatLinks(sessionsLinks(0, 250, 2)...); !strings.Contains(got, "page_size=2&") {
		t.Errorf("single page Link %s, want page_size=2", got)
	}
}

func TestParseSessionsPage(t *testing.T) {
	for _, c := range []struct {
		q          string
		page, size int
		bad        bool
	}{
		{"", 0, 250, false},
		{"page_size=1", 0, 1, false},
		{"page_size=2&page_token=" + encodeSessionsToken(4), 2, 2, false},
		{"page_size=5000", 0, 1000, false},
		{"page_size=0", 0, 1, false},
		{"page_token=" + encodeSessionsToken(500), 2, 250, false},
		{"per_page=1&page=3", 3, 1, false},
		// The SDKs' defaults beside an explicit page form (client-go's
		// PerPage(1).Page(0)) and an explicit page size (PageSize(1)).
		{"per_page=1&page=0&page_size=250", 0, 1, false},
		{"per_page=250&page_size=1", 0, 1, false},
		{"page=1&page_size=1&page_token=" + encodeSessionsToken(1) + "&per_page=1", 1, 1, false},
		{"page_size=abc", 0, 0, true},
		{"page_token=%ff%fe", 0, 0, true},
		{"page_token=bm90IGpzb24", 0, 0, true},
		{"page_token=" + encodeSessionsToken(-1), 0, 0, true},
		{"per_page=0", 0, 0, true},
		{"page=-1", 0, 0, true},
	} {
		q, _ := url.ParseQuery(c.q)
		page, size, err := parseSessionsPage(q)
		if c.bad {
			if err == nil || err.Code != http.StatusBadRequest {
				t.Errorf("%q: want 400, got page %d size %d err %v", c.q, page, size, err)
			}
			continue
		}
		if err != nil || page != c.page || size != c.size {
			t.Errorf("%q: page %d size %d err %v, want %d %d", c.q, page, size, err, c.page, c.size)
		}
	}
}

func TestWhoamiJSONMatchesEncodingJSON(t *testing.T) {
	ip := "10.0.0.1"
	odd := "ua \u2028 é \x01 </script>"
	zone := time.FixedZone("CEST", 2*3600)
	t0 := time.Date(2026, 5, 17, 10, 11, 12, 130000000, zone)
	verified := t0.Add(time.Minute)
	sessions := []*sessionstore.Session{
		{ID: "s1", IdentityID: "i1", Active: true, ExpiresAt: t0.Add(time.Hour), AuthenticatedAt: t0, IssuedAt: t0, AAL: "aal1"},
		{ID: "s2", IdentityID: "i1", Active: true, ExpiresAt: t0.UTC().Add(time.Hour), AuthenticatedAt: t0.UTC(), IssuedAt: t0, AAL: "aal2",
			AuthenticationMethods: []sessionstore.AuthMethod{{Method: "password", AAL: "aal1", CompletedAt: t0}, {Method: "totp", AAL: "aal2", CompletedAt: t0.Add(time.Second)}},
			Devices:               []sessionstore.Device{{ID: "d1", IPAddress: &ip, UserAgent: &odd, Location: "Zürich"}, {ID: "d2"}}},
	}
	idents := []struct {
		ident *sessionstore.Identity
		fast  bool // hand-encoded without encoding/json
	}{
		{&sessionstore.Identity{ID: "i1", SchemaID: "default", State: "active", Traits: json.RawMessage(`{"email":"a@example.com","name":{"first":"A \"q\" \\ b"}}`), CreatedAt: t0, UpdatedAt: t0,
			MetadataPublic: json.RawMessage(`{"plan":"pro","n":[1,2.5,true,null]}`),
			VerifiableAddresses: []sessionstore.VerifiableAddress{
				{ID: "v1", Value: "a@example.com", Via: "email", Status: "completed", Verified: true, VerifiedAt: &verified, CreatedAt: t0, UpdatedAt: t0},
				{ID: "v2", Value: "b@example.com", Via: "email", Status: "pending", CreatedAt: t0, UpdatedAt: t0}},
			RecoveryAddresses: []sessionstore.RecoveryAddress{{ID: "r1", Value: "a@example.com", Via: "email", CreatedAt: t0, UpdatedAt: t0}}}, true},
		{&sessionstore.Identity{ID: "i2", SchemaID: "custom schema/ü", State: "active", CreatedAt: t0, UpdatedAt: t0}, true},
		{&sessionstore.Identity{ID: "i3", SchemaID: "default", State: "active", Traits: json.RawMessage(`{"name":"<A> & co"}`)}, false},
		{&sessionstore.Identity{ID: "i4", SchemaID: "default", State: "active", Traits: json.RawMessage(`{ "email": "x@example.com" }`)}, false},
		{&sessionstore.Identity{ID: "i5", SchemaID: "default", State: "active", Traits: json.RawMessage(`{"name":"Zoë \u2028"}`)}, false},
		{&sessionstore.Identity{ID: "i6", SchemaID: "default", State: "inactive", Traits: json.RawMessage(`{}`), MetadataPublic: json.RawMessage("{\n}")}, false},
	}
	// public_url is required (no URL comes from the Host header), so the
	// one configuration to pin is the configured one.
	for _, publicURL := range []bool{true} {
		const base = "http://127.0.0.1:4433/"
		e := NewManager(Config{SessionLifespan: 24 * time.Hour}, nil, nil, wire.NewURLs(base, "/ui/", nil, ""), nil, time.Now)
		r := httptest.NewRequest("GET", base+"sessions/whoami", nil)
		for _, s := range sessions {
			for _, tc := range idents {
				want, err := json.Marshal(e.SessionJSON(s, e.IdentityJSON(r, tc.ident)))
				if err != nil {
					t.Fatal(err)
				}
				w := httptest.NewRecorder()
				e.writeWhoami(w, r, s, tc.ident, e.Active(s), false)
				if got := w.Body.Bytes(); !bytes.Equal(got, want) {
					t.Errorf("public_url %v, session %s, identity %s:\n got %s\nwant %s", publicURL, s.ID, tc.ident.ID, got, want)
				}
				if _, fast := e.appendIdentityJSON(nil, r, tc.ident); fast != tc.fast {
					t.Errorf("identity %s: hand-encoded %v, want %v", tc.ident.ID, fast, tc.fast)
				}
			}
		}
	}
}
