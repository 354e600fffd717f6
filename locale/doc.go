// Package locale holds the texts of the built-in pages and the mails in
// every language: Kratos's UiText messages keyed by their numeric id, the
// page strings keyed by name, and the mail templates keyed by the courier's
// template id. English is Kratos's text, byte for byte; German, French,
// Spanish and (Brazilian) Portuguese ship complete. It also negotiates the
// language of a request (Accept-Language, an explicit choice remembered in
// a cookie) and formats dates, times and numbers the language's way in the
// user's time zone.
//
// The flow JSON keeps Kratos's English "text"; translated texts are for the
// built-in pages and the mails. The package imports nothing of the module.
//
// # Texts
//
// Messages are Go text/template texts over the message's context (the keys
// Kratos sends, see MessageInfo.Context), plus derived variables
// (expired_at_unix_since_minutes, privileged_session_expires_at_unix_until_minutes)
// and "text" (the flow's English text):
//
//	"4000002": "Das Feld {{.property}} fehlt."
//	"4010001": "Der Anmeldevorgang ist vor {{decimal .expired_at_unix_since_minutes 2}} Minuten abgelaufen."
//	"1050014": "Code wurde am {{datetime .used_at}} verwendet"
//
// Functions: quote (Go's %q), decimal x n, join list sep, datetime t,
// date t, secretCode. Page strings are plain strings with the fmt verbs of
// the English string (%s, %d; %[2]s to reorder).
//
// # Adding a language or overriding texts without rebuilding
//
// Point translations_dir (Options.Dir) at a directory; it is read once at
// start, and any mistake stops the start with the file and key named:
//
//	<dir>/<lang>.json or <dir>/<lang>.toml
//	<dir>/<lang>/*.json, *.toml           (texts split over several files)
//	<dir>/<lang>/mail/<template>/<variant>/email.subject.gotmpl
//	                                       email.body.gotmpl
//	                                       email.body.plaintext.gotmpl
//
// <lang> is a BCP 47 tag (nl, de-CH, pt-BR). A file holds any of:
//
//	{
//	  "name": "Nederlands",
//	  "messages": {"1010001": "Inloggen", "4000002": "Veld {{.property}} ontbreekt."},
//	  "pages": {"login.title": "Inloggen", "login.subtitle": "Log in om verder te gaan naar %s."},
//	  "formats": {"datetime": "2 Jan 2006, 15:04 MST", "date": "2 Jan 2006",
//	              "months": ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"],
//	              "decimal": ","}
//	}
//
// or the same in TOML ([messages] 1010001 = "Inloggen"; ["pages"]
// "login.title" = "Inloggen"). A file for a built-in language overrides
// only the texts it names; a new language falls back to its parent
// (de-CH → de) and then English for what it lacks (Catalog.Gaps lists
// that, for the start-up log). An unknown message id or page key, a
// variable the message does not have, a verb the English string does not
// have, a template that does not parse or render: each is an error. Dates
// use Go layouts where "Jan" is the month name from "months" and '…'
// quotes literal text.
//
// Mail templates use the courier's data (TemplateData's fields:
// {{ .RecoveryCode }}, {{ .ExpiresInMinutes }}, …) and sprig's hermetic
// functions, as the courier's own templates do. Each file falls back on its
// own: a de/mail/recovery_code/valid/email.subject.gotmpl alone changes the
// German subject and keeps the built-in German bodies.
package locale
