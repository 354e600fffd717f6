package locale

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"de": "de", "DE": "de", "de-ch": "de-CH", "pt_br": "pt-BR", "zh-hant-tw": "zh-Hant-TW",
		"es-419": "es-419", "sr-Latn": "sr-Latn", "en-US-x-twain": "en-US-x-twain",
	} {
		if got, ok := Canonical(in); !ok || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "*", "d", "1e", "de-", "-de", "de--ch", "de ch", "de;q=1", "../de", "de/ch",
		"de-abcdefghi", "é", "de-CH\x00", strings.Repeat("a", 36), "<script>"} {
		if got, ok := Canonical(in); ok {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
}

func TestNegotiate(t *testing.T) {
	c := Builtin()
	cases := []struct{ header, want string }{
		{"", "en"},
		{"de", "de"},
		{"de-CH", "de"},                          // region fallback
		{"de-CH-1996", "de"},                     // variant
		{"fr-CA,fr;q=0.9,en;q=0.8", "fr"},        // browser's usual list
		{"nl,de;q=0.5", "de"},                    // first enabled by q
		{"en;q=0.5,es;q=0.9", "es"},              // q, not order
		{"es;q=0.9,pt;q=0.9", "es"},              // equal q: order
		{"pt-BR", "pt"},                          // pt-BR → pt
		{"nl", "en"},                             // nothing: default
		{"*", "en"},                              // wildcard: default
		{"nl,*;q=0.1", "en"},                     // wildcard after unknown
		{"en;q=0,*", "de"},                       // wildcard, default refused: first enabled not refused
		{"de;q=0,de-CH", "en"},                   // de refused: de-CH may not fall back to it
		{"DE-at ; q=0.8 , xx", "de"},             // spaces, case
		{"fr;q=1.0", "fr"},                       // q=1.0
		{"fr;q=1.001,de", "de"},                  // invalid q: entry skipped
		{"fr;q=0.1234,de;q=0.1", "de"},           // too many decimals: skipped
		{"fr;q=-1,es;q=abc,pt;q=", "en"},         // all invalid
		{"fr;level=1;q=0.5,es;q=0.4", "fr"},      // other parameters ignored
		{"<script>,de", "de"},                    // malformed tag skipped
		{"x-klingon,i-default,es", "es"},         // private/grandfathered ignored
		{"en-GB", "en"},                          // en region
		{",,,;;;,de", "de"},                      // junk
		{strings.Repeat("xx,", 40) + "de", "en"}, // past the entry limit
	}
	for _, tc := range cases {
		if got := c.Negotiate(tc.header); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.header, got, tc.want)
		}
	}
	// A very long header is read only up to the bound (no panic, no cost).
	long := strings.Repeat("a", 1<<20) + ",de"
	if got := c.Negotiate(long); got != "en" {
		t.Errorf("long header: %q", got)
	}
}

func TestNegotiateEnabledAndDefault(t *testing.T) {
	c, err := Load(Options{Languages: []string{"de", "FR"}, Default: "de"})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"":                "de",
		"en":              "de", // English not enabled
		"es,fr;q=0.1":     "fr",
		"*":               "de",
		"de;q=0,*":        "fr",
		"de;q=0,fr;q=0,*": "de", // everything refused: the default
	}
	for h, want := range cases {
		if got := c.Negotiate(h); got != want {
			t.Errorf("%q: %q, want %q", h, got, want)
		}
	}
	if got := c.Default(); got != "de" {
		t.Errorf("default %q", got)
	}
	if _, ok := c.Choose("en"); ok {
		t.Error("en chosen though not enabled")
	}
	// English stays the fallback of lookups even when not offered.
	c2, err := Load(Options{Languages: []string{"pt-BR"}, Dir: writeDir(t, map[string]string{"pt-BR.json": `{"pages":{"link.logout":"Desconectar"}}`})})
	if err != nil {
		t.Fatal(err)
	}
	// pt is not enabled, its regional variant pt-BR is.
	if got := c2.Negotiate("pt"); got != "pt-BR" {
		t.Errorf("pt with pt-BR enabled: %q", got)
	}
	if got := c2.Negotiate("pt-PT"); got != "pt-BR" {
		t.Errorf("pt-PT with pt-BR enabled: %q", got)
	}
}

func TestChooseAndFromRequest(t *testing.T) {
	c := Builtin()
	for in, want := range map[string]string{"de": "de", "de-CH": "de", " fr ": "fr", "PT-br": "pt"} {
		if got, ok := c.Choose(in); !ok || got != want {
			t.Errorf("Choose(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "nl", "*", "de;q=1", "de,fr", "../../etc", "de\r\nSet-Cookie: x=y"} {
		if got, ok := c.Choose(in); ok {
			t.Errorf("Choose(%q) = %q", in, got)
		}
	}
	req := func(cookie, accept string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/ui/login", nil)
		if cookie != "" {
			r.Header.Set("Cookie", CookieName+"="+cookie)
		}
		if accept != "" {
			r.Header.Set("Accept-Language", accept)
		}
		return r
	}
	cases := []struct{ cookie, accept, want string }{
		{"", "", "en"},
		{"", "es-MX,es;q=0.9", "es"},
		{"de", "es", "de"}, // the explicit choice wins
		{"nl", "es", "es"}, // a choice that is not enabled is ignored
		{"%3Cx%3E", "fr", "fr"},
		{"pt", "", "pt"},
	}
	for _, tc := range cases {
		if got := c.FromRequest(req(tc.cookie, tc.accept)); got != tc.want {
			t.Errorf("cookie %q accept %q: %q, want %q", tc.cookie, tc.accept, got, tc.want)
		}
	}
	// Several Accept-Language header lines are one list.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Add("Accept-Language", "nl")
	r.Header.Add("Accept-Language", "fr;q=0.5")
	if got := c.FromRequest(r); got != "fr" {
		t.Errorf("two header lines: %q", got)
	}
	ck := Cookie("de", true)
	if ck.Name != CookieName || ck.Value != "de" || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge != 365*24*3600 {
		t.Errorf("cookie %+v", ck)
	}
}

func TestParseZone(t *testing.T) {
	if _, ok := ParseZone("Europe/Berlin"); !ok {
		t.Skip("no time zone database")
	}
	for _, name := range []string{"Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "UTC", "America/Port-au-Prince"} {
		if loc, ok := ParseZone(name); !ok || loc.String() != name {
			t.Errorf("%q: %v %v", name, loc, ok)
		}
	}
	for _, name := range []string{"", "Local", "../../../etc/passwd", "/etc/localtime", "Europe/../../etc/passwd", "Europe/Nowhere",
		"Europe//Berlin", "Europe/Berlin/", "Europe/Berlin\x00", "a/b/c/d", strings.Repeat("A", 31), "Europe\\Berlin", "europe berlin"} {
		if loc, ok := ParseZone(name); ok || loc != time.UTC {
			t.Errorf("%q accepted: %v", name, loc)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", ZoneCookieName+"=Asia%2FTokyo")
	if got := ZoneFromRequest(r).String(); got != "Asia/Tokyo" {
		t.Errorf("cookie zone %q", got)
	}
	r.Header.Set("Cookie", ZoneCookieName+"=..%2F..%2Fetc%2Fpasswd")
	if got := ZoneFromRequest(r); got != time.UTC {
		t.Errorf("traversal zone %v", got)
	}
	if got := ZoneFromRequest(httptest.NewRequest(http.MethodGet, "/", nil)); got != time.UTC {
		t.Errorf("no cookie: %v", got)
	}
}
