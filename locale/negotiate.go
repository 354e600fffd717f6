package locale

import (
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Names the pages use for the explicit choices. The cookies hold no secret:
// they are read on every page and validated against the enabled languages
// (the zone against the time zone database), never echoed unchecked.
const (
	// CookieName holds the language the user picked on a page.
	CookieName = "kratos_lang"
	// QueryParam is the field of the pages' language picker (a POST with
	// the CSRF token, lang=de); the pages remember the choice in
	// CookieName.
	QueryParam = "lang"
	// ZoneCookieName holds the browser's IANA time zone (set by ui.js from
	// Intl.DateTimeFormat().resolvedOptions().timeZone).
	ZoneCookieName = "kratos_tz"
	// CookieMaxAge is how long the choice of language is remembered.
	CookieMaxAge = 365 * 24 * time.Hour
)

// Header limits: Accept-Language is attacker-controlled; a long header is
// read only up to these bounds.
const (
	maxAcceptLanguage = 4096
	maxAcceptEntries  = 32
	maxTagLen         = 35
)

// Canonical returns tag in canonical BCP 47 case (de, de-CH, zh-Hant-TW,
// es-419), accepting "_" for "-". ok is false for anything that is not a
// well-formed tag (letters and digits, subtags of 1-8 characters, a
// primary language subtag of 2-8 letters) or for "*".
func Canonical(tag string) (string, bool) {
	if tag == "" || len(tag) > maxTagLen {
		return "", false
	}
	parts := strings.Split(strings.ReplaceAll(tag, "_", "-"), "-")
	for i, p := range parts {
		if len(p) == 0 || len(p) > 8 {
			return "", false
		}
		for j := 0; j < len(p); j++ {
			c := p[j]
			alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			digit := c >= '0' && c <= '9'
			if !alpha && !(digit && i > 0) {
				return "", false
			}
		}
		switch {
		case i == 0:
			if len(p) < 2 {
				return "", false
			}
			parts[i] = strings.ToLower(p)
		case len(p) == 2 && isAlpha(p):
			parts[i] = strings.ToUpper(p) // region
		case len(p) == 4 && isAlpha(p):
			parts[i] = strings.ToUpper(p[:1]) + strings.ToLower(p[1:]) // script
		default:
			parts[i] = strings.ToLower(p)
		}
	}
	return strings.Join(parts, "-"), true
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// parents returns tag and its truncations: de-CH-1996 → de-CH-1996, de-CH, de.
func parents(tag string) []string {
	out := []string{tag}
	for {
		i := strings.LastIndexByte(tag, '-')
		if i < 0 {
			return out
		}
		tag = tag[:i]
		out = append(out, tag)
	}
}

type acceptEntry struct {
	tag string // canonical, or "*"
	q   int    // quality in thousandths
	pos int
}

// parseAcceptLanguage returns the entries of an Accept-Language header,
// best first (by q, then by position). Malformed entries are skipped, as
// are entries past the bounds.
func parseAcceptLanguage(h string) []acceptEntry {
	if len(h) > maxAcceptLanguage {
		h = h[:maxAcceptLanguage]
	}
	var out []acceptEntry
	for i, raw := range strings.SplitN(h, ",", maxAcceptEntries+1) {
		if i == maxAcceptEntries {
			break
		}
		tag, params, _ := strings.Cut(raw, ";")
		tag = strings.TrimSpace(tag)
		q := 1000
		if params != "" {
			var ok bool
			if q, ok = parseQ(params); !ok {
				continue
			}
		}
		if tag == "*" {
			out = append(out, acceptEntry{tag: "*", q: q, pos: i})
			continue
		}
		c, ok := Canonical(tag)
		if !ok {
			continue
		}
		out = append(out, acceptEntry{tag: c, q: q, pos: i})
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].q > out[b].q })
	return out
}

// parseQ reads "q=0.8" (RFC 9110 qvalue: 0 to 1 with up to 3 decimals)
// from the parameters of one entry; other parameters are ignored.
func parseQ(params string) (int, bool) {
	q := 1000
	for _, p := range strings.Split(params, ";") {
		k, v, found := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		if !found {
			return 0, false
		}
		v = strings.TrimSpace(v)
		if len(v) == 0 || len(v) > 5 {
			return 0, false
		}
		whole, frac, _ := strings.Cut(v, ".")
		if (whole != "0" && whole != "1") || len(frac) > 3 {
			return 0, false
		}
		n := 0
		for i := 0; i < 3; i++ {
			n *= 10
			if i < len(frac) {
				d := frac[i]
				if d < '0' || d > '9' {
					return 0, false
				}
				n += int(d - '0')
			}
		}
		if whole == "1" {
			if n != 0 {
				return 0, false
			}
			n = 1000
		}
		q = n
	}
	return q, true
}

// Negotiate picks the enabled language that best matches an
// Accept-Language header: entries by descending q; for each, the tag
// itself, then its truncations (de-CH → de), then an enabled regional
// variant of its language (pt → pt-BR when only that is enabled); "*"
// stands for the default language (or the first enabled one not refused).
// q=0 refuses a language and its regional variants. Nothing acceptable:
// the default language.
func (c *Catalog) Negotiate(acceptLanguage string) string {
	entries := parseAcceptLanguage(acceptLanguage)
	refused := map[string]bool{}
	for _, e := range entries {
		if e.q == 0 && e.tag != "*" {
			refused[e.tag] = true
		}
	}
	isRefused := func(lang string) bool {
		for _, p := range parents(lang) {
			if refused[p] {
				return true
			}
		}
		return false
	}
	for _, e := range entries {
		if e.q == 0 {
			continue
		}
		if e.tag == "*" {
			if !isRefused(c.def) {
				return c.def
			}
			for _, l := range c.langs {
				if !isRefused(l) {
					return l
				}
			}
			continue
		}
		for _, p := range parents(e.tag) {
			if c.enabled[p] && !isRefused(p) {
				return p
			}
		}
		base := parents(e.tag)
		primary := base[len(base)-1]
		for _, l := range c.langs {
			if strings.HasPrefix(l, primary+"-") && !isRefused(l) {
				return l
			}
		}
	}
	return c.def
}

// Choose validates an explicit choice (the picker's QueryParam field or
// the CookieName cookie): the enabled language it names, directly or by its
// truncations (de-CH picks de). ok is false for anything else, which the
// caller ignores.
func (c *Catalog) Choose(value string) (string, bool) {
	tag, ok := Canonical(strings.TrimSpace(value))
	if !ok {
		return "", false
	}
	for _, p := range parents(tag) {
		if c.enabled[p] {
			return p, true
		}
	}
	return "", false
}

// FromRequest is the language of a request: the CookieName choice when it
// names an enabled language, else Accept-Language, else the default.
func (c *Catalog) FromRequest(r *http.Request) string {
	if ck, err := r.Cookie(CookieName); err == nil {
		if l, ok := c.Choose(ck.Value); ok {
			return l
		}
	}
	return c.Negotiate(strings.Join(r.Header.Values("Accept-Language"), ","))
}

// Cookie is the cookie remembering lang (a value from Choose); secure as
// the engine's other cookies (false only on plain-HTTP development
// setups). HttpOnly: only the server reads it. The caller adds Domain if
// its cookies have one.
func Cookie(lang string, secure bool) *http.Cookie {
	return &http.Cookie{ // #nosec G124 -- HttpOnly and SameSite are set; Secure is the caller's (off only in dev mode over plain http)
		Name: CookieName, Value: lang, Path: "/", MaxAge: int(CookieMaxAge / time.Second),
		Secure: secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
}

// --- time zones ---

// zoneName: IANA names (Europe/Berlin, America/Argentina/Buenos_Aires,
// Etc/GMT+5, UTC); nothing that could walk the file system.
var zoneName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]{0,29}(/[A-Za-z0-9][A-Za-z0-9_+-]{0,29}){0,2}$`)

// zones caches loaded locations of names the time zone database knows.
// The database has some 600 names, but a case-insensitive file system
// knows every spelling of them, so the cache is bounded too.
var zones = struct {
	sync.RWMutex
	m map[string]*time.Location
}{m: map[string]*time.Location{}}

const maxZones = 1024

// ParseZone returns the location of an IANA zone name as a browser reports
// it, and false (with UTC) for an empty, malformed or unknown name, and
// for "Local" (the server's zone is not the user's).
func ParseZone(name string) (*time.Location, bool) {
	if name == "" || name == "Local" || !zoneName.MatchString(name) {
		return time.UTC, false
	}
	zones.RLock()
	loc, ok := zones.m[name]
	zones.RUnlock()
	if ok {
		return loc, true
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC, false
	}
	zones.Lock()
	if len(zones.m) < maxZones {
		zones.m[name] = loc
	}
	zones.Unlock()
	return loc, true
}

// ZoneFromRequest is the browser's zone from ZoneCookieName, UTC when it
// is missing or invalid.
func ZoneFromRequest(r *http.Request) *time.Location {
	if ck, err := r.Cookie(ZoneCookieName); err == nil {
		// ui.js writes encodeURIComponent(zone): Europe%2FBerlin.
		if v, err := url.PathUnescape(ck.Value); err == nil {
			loc, _ := ParseZone(v)
			return loc
		}
	}
	return time.UTC
}
