package locale

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"
)

var (
	englishOnce    sync.Once
	englishPageMap map[string]string
)

// messageFuncs are the functions message templates may call. zone nil:
// UTC (parsing and the start-up check).
//
//	quote x          Go's %q of x ("a \"b\"")
//	decimal x n      x with n decimals and the language's separator
//	join list sep    the list's items joined by sep
//	datetime t       t in the user's zone, the language's date-and-time format
//	date t           t's date only
//	secretCode s     the code of a backup code entry, "" for a used one
func messageFuncs(fm *formats, zone *time.Location) template.FuncMap {
	if zone == nil {
		zone = time.UTC
	}
	return template.FuncMap{
		"quote": func(v any) string { return strconv.Quote(fmt.Sprint(v)) },
		"decimal": func(v any, places int) (string, error) {
			return fm.decimal(v, places)
		},
		"join": func(v any, sep string) (string, error) {
			s, err := toStrings(v)
			return strings.Join(s, sep), err
		},
		"datetime": func(v any) (string, error) {
			t, err := toTime(v)
			return fm.format(t.In(zone), fm.DateTime), err
		},
		"date": func(v any) (string, error) {
			t, err := toTime(v)
			return fm.format(t.In(zone), fm.Date), err
		},
		"secretCode": secretCode,
	}
}

// sampleVars gives every variable of a message a value of the type flows
// put there, for the start-up check of templates.
func sampleVars(info MessageInfo) map[string]any {
	now := time.Date(2020, 1, 1, 0, 59, 59, 0, time.UTC)
	out := map[string]any{}
	for _, v := range info.Vars() {
		switch {
		case strings.HasSuffix(v, "_unix") || strings.HasSuffix(v, "_minutes") || strings.HasSuffix(v, "_length") ||
			strings.HasSuffix(v, "_items") || strings.HasPrefix(v, "index_") || v == "breaches" ||
			v == "minimum" || v == "maximum" || v == "actual" || v == "base" || v == "expected":
			out[v] = 5
		case strings.HasSuffix(v, "_at") || v == "privilegedSessionExpiresAt":
			out[v] = now
		case v == "secrets":
			out[v] = []any{
				map[string]any{"id": 1050009, "text": "abcd1234", "type": "info", "context": map[string]any{"secret": "abcd1234"}},
				map[string]any{"id": 1050014, "text": "used", "type": "info", "context": map[string]any{"used_at": now}},
			}
		case v == "allowed_types" || strings.HasPrefix(v, "available_"):
			out[v] = []string{"string"}
		default:
			out[v] = "sample"
		}
	}
	return out
}

// Localizer renders texts in one language for one request. It is cheap
// to make (one per page view) and not shared.
type Localizer struct {
	c     *Catalog
	lang  string
	chain []*bundle
	fm    *formats
	zone  *time.Location
	now   time.Time
}

// Localizer returns the texts of lang (the default when lang is not
// enabled) with dates in zone (UTC when nil) and relative times counted
// from now.
func (c *Catalog) Localizer(lang string, zone *time.Location, now time.Time) *Localizer {
	if !c.enabled[lang] {
		lang = c.def
	}
	if zone == nil {
		zone = time.UTC
	}
	return &Localizer{c: c, lang: lang, chain: c.chain(lang), fm: c.formatsOf(lang), zone: zone, now: now}
}

// Lang is the language (for <html lang>).
func (l *Localizer) Lang() string { return l.lang }

// Zone is the zone dates are shown in.
func (l *Localizer) Zone() *time.Location { return l.zone }

// Message renders UiText id with its context in the language. english is
// the flow's English text: it is returned as is where the language's text
// would be Kratos's built-in English (so English pages show exactly the
// flow's text), and when the template cannot be rendered from this context
// (a value missing or of another type), so a page never shows a broken
// text. The result is plain text: the page escapes it.
func (l *Localizer) Message(id int, ctx map[string]any, english string) string {
	var mt *msgTpl
	for _, b := range l.chain {
		if t, ok := b.msgs[id]; ok {
			mt = t
			break
		}
	}
	if mt == nil {
		return english
	}
	if mt.stock && english != "" {
		return english
	}
	vars := make(map[string]any, len(ctx)+3)
	for k, v := range ctx {
		vars[k] = v
	}
	addDerived(vars, l.now)
	if _, ok := vars[VarText]; !ok {
		vars[VarText] = english
	}
	t := mt.tpl
	if mt.usesZone {
		c, err := t.Clone()
		if err != nil {
			return english
		}
		t = c.Funcs(messageFuncs(l.fm, l.zone))
	}
	var b strings.Builder
	if err := t.Execute(&b, vars); err != nil {
		if english == "" {
			return strconv.Itoa(id)
		}
		return english
	}
	return b.String()
}

// addDerived computes the derived variables from the context's times.
func addDerived(vars map[string]any, now time.Time) {
	if _, ok := vars[VarExpiredMinutes]; !ok {
		if t, ok := contextTime(vars, "expired_at"); ok {
			vars[VarExpiredMinutes] = now.Sub(t).Minutes()
		}
	}
	if _, ok := vars[VarPrivilegedMinutes]; !ok {
		if t, ok := contextTime(vars, "privileged_session_expires_at"); ok {
			vars[VarPrivilegedMinutes] = t.Sub(now).Minutes()
		}
	}
}

// contextTime reads key or, failing that, key+"_unix".
func contextTime(vars map[string]any, key string) (time.Time, bool) {
	if v, ok := vars[key]; ok {
		if t, err := toTime(v); err == nil {
			return t, true
		}
	}
	if v, ok := vars[key+"_unix"]; ok {
		if t, err := toTime(v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// Page returns the page string key formatted with args (fmt verbs, as the
// English text has them), English when the language lacks it, the key
// itself when nothing has it (a gap shows rather than a blank).
func (l *Localizer) Page(key string, args ...any) string {
	s, ok := l.PageOK(key)
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

// PageOK returns the unformatted page string key and whether any language
// of the chain has it (for optional texts: group headings, descriptions).
func (l *Localizer) PageOK(key string) (string, bool) {
	for _, b := range l.chain {
		if p, ok := b.pages[key]; ok {
			return p.s, true
		}
	}
	return "", false
}

// Known translates one of Kratos's fixed English error texts (the message
// or reason of an error the error page shows); other texts come back
// unchanged.
func (l *Localizer) Known(english string) string {
	if k, ok := l.c.known[english]; ok {
		if s, ok := l.PageOK(k); ok {
			return s
		}
	}
	return english
}

// DateTime is t in the user's zone in the language's format
// ("2 Jan 2006, 15:04 CET", "2. Jan. 2006, 15:04 CET").
func (l *Localizer) DateTime(t time.Time) string { return l.fm.format(t.In(l.zone), l.fm.DateTime) }

// Date is t's date in the user's zone.
func (l *Localizer) Date(t time.Time) string { return l.fm.format(t.In(l.zone), l.fm.Date) }

// Decimal is x with places decimals in the language's notation.
func (l *Localizer) Decimal(x float64, places int) string {
	s, err := l.fm.decimal(x, places)
	if err != nil {
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return s
}

// Ago is how long before now t was, as the sessions page says it ("just
// now", "5 minutes ago", "3 days ago").
func (l *Localizer) Ago(t time.Time) string {
	d := l.now.Sub(t)
	switch {
	case d < time.Minute:
		return l.Page("time.now")
	case d < 2*time.Minute:
		return l.Page("time.minute")
	case d < time.Hour:
		return l.Page("time.minutes", int(d/time.Minute))
	case d < 2*time.Hour:
		return l.Page("time.hour")
	case d < 48*time.Hour:
		return l.Page("time.hours", int(d/time.Hour))
	default:
		return l.Page("time.days", int(d/(24*time.Hour)))
	}
}
