package ui

import (
	"html/template"

	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/locale"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// view is what the page template renders: one page with its forms, links
// and messages.
type view struct {
	// Lang is the page's language (<html lang>); l renders its texts.
	Lang       string
	l          *locale.Localizer
	Page       string
	Home       string
	LoginURL   string
	Title      string
	Subtitle   string
	Product    string
	Logo       template.URL
	CSS, Theme string
	JS, Icon   string
	Wide       bool
	Nav        []navLink
	Messages   []node.Text
	Summary    []summaryLine
	Forms      []*formView
	AltForms   []*formView
	Footer     []footerLine
	Scripts    []*node.ScriptAttrs
	Error      *errorView
	Sessions   *sessionsView
	Welcome    *welcomeView
	Picker     *pickerView
	NeedsJS    bool
	// social is the configured providers (names, icons); ident the
	// settings flow's identity (its linked providers), nil elsewhere.
	social *socialSet
	ident  *sessionstore.Identity
}

type navLink struct {
	Href    string
	Text    string
	Current bool
}

// footerLine is a line under the card: an optional prompt and a link.
type footerLine struct {
	Prompt string
	Link   navLink
}

// summaryLine shows a value the flow carries in a hidden field (the address
// being registered, the account being confirmed).
type summaryLine struct {
	Label, Value string
}

type formView struct {
	ID       string
	Action   string
	Method   string
	Heading  string
	Desc     string
	Group    string
	Label    string // the form's accessible name when it has no heading
	Sep      bool   // an "or" separator above this form
	Aux      bool   // auxiliary actions (p.g. Back): no heading, quiet style
	Social   bool   // the social sign-in buttons
	Hidden   []hiddenField
	Sections []*section
}

type section struct {
	Group   string
	Heading string
	Sep     bool
	Items   []*item
}

type hiddenField struct {
	Name, Value string
}

type option struct {
	Value, Label string
	Selected     bool
}

type backupCode struct {
	Text string
	Used bool
}

// item is one rendered node. Kind picks the template branch.
type item struct {
	Kind         string // field, checkbox, select, submit, trigger, social, provider, text, secret, codes, img, a, div, hidden
	ID           string
	Name         string
	Type         string
	Value        string
	Label        string
	Required     bool
	Disabled     bool
	Checked      bool
	Autocomplete string
	Pattern      string
	MaxLength    int
	Autofocus    bool
	Messages     []node.Text
	Invalid      bool
	Style        string // primary, secondary, danger, quiet, social
	NoValidate   bool
	Form         string // form attribute: the button submits another form
	Trigger      string
	TriggerValue string
	OnLoad       string
	Options      []option
	Text         string
	Codes        []backupCode
	Src          template.URL
	Href         template.URL
	Width        int
	Height       int
	Class        string
	Data         map[string]string
	Group        string
	// Provider (its name), Mono (the letter shown without an icon, which
	// is Src), Linked and Note: a social sign-in button or settings row.
	Provider string
	Mono     string
	Linked   bool
	Note     string
}

type errorView struct {
	Found   bool
	Code    int
	Status  string
	Message string
	Reason  string
	ID      string
	Retry   string
}

type sessionsView struct {
	Current      *sessionRow
	Others       []*sessionRow
	CSRF         string
	Revoke       string
	RevokeOthers string
}

type sessionRow struct {
	ID          string
	Device      string
	UserAgent   string
	IP          string
	SignedIn    string
	SignedInISO string
	Expires     string
	ExpiresISO  string
	Methods     string
	RevokeLabel string
}

type welcomeView struct {
	SignedIn  bool
	Continue  string
	Settings  string
	Sessions  string
	Logout    string
	Login     string
	Register  string
	Recovery  string
	ShowReg   bool
	ShowRecov bool
}

// newView is page in l's language.
func (p *Pages) newView(l *locale.Localizer, page string) *view {
	return &view{
		Lang: l.Lang(), l: l,
		Page: page, Home: p.cfg.Prefix, Product: p.product(l), Logo: p.logo(),
		CSS: p.assetURL("ui.css"), Theme: p.assetURL("theme.css"),
		JS: p.assetURL("ui.js"), Icon: p.assetURL("favicon.svg"),
		social: p.social,
	}
}
