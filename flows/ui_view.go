package flows

import (
	"html/template"

	"github.com/caddy-kratos/caddy-kratos/flows/node"
)

type uiView struct {
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
	Nav        []uiLink
	Messages   []node.Text
	Summary    []uiSummary
	Forms      []*uiForm
	AltForms   []*uiForm
	Footer     []uiFooter
	Scripts    []*node.ScriptAttrs
	Error      *uiErrorView
	Sessions   *uiSessionsView
	Welcome    *uiWelcomeView
	NeedsJS    bool
}

type uiLink struct {
	Href    string
	Text    string
	Current bool
}

// uiFooter is a line under the card: an optional prompt and a link.
type uiFooter struct {
	Prompt string
	Link   uiLink
}

// uiSummary shows a value the flow carries in a hidden field (the address
// being registered, the account being confirmed).
type uiSummary struct {
	Label, Value string
}

type uiForm struct {
	ID       string
	Action   string
	Method   string
	Heading  string
	Desc     string
	Group    string
	Sep      bool // an "or" separator above this form
	Aux      bool // auxiliary actions (e.g. Back): no heading, quiet style
	Hidden   []uiHidden
	Sections []*uiSection
}

type uiSection struct {
	Group   string
	Heading string
	Sep     bool
	Items   []*uiItem
}

type uiHidden struct {
	Name, Value string
}

type uiOption struct {
	Value, Label string
	Selected     bool
}

type uiCode struct {
	Text string
	Used bool
}

// uiItem is one rendered node. Kind picks the template branch.
type uiItem struct {
	Kind         string // field, checkbox, select, submit, trigger, text, secret, codes, img, a, div, hidden
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
	Style        string // primary, secondary, danger, quiet
	NoValidate   bool
	Form         string // form attribute: the button submits another form
	Trigger      string
	TriggerValue string
	OnLoad       string
	Options      []uiOption
	Text         string
	Codes        []uiCode
	Src          template.URL
	Href         template.URL
	Width        int
	Height       int
	Class        string
	Data         map[string]string
	Group        string
}

type uiErrorView struct {
	Found   bool
	Code    int
	Status  string
	Message string
	Reason  string
	ID      string
	Retry   string
}

type uiSessionsView struct {
	Current      *uiSession
	Others       []*uiSession
	CSRF         string
	Revoke       string
	RevokeOthers string
}

type uiSession struct {
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

type uiWelcomeView struct {
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

func (e *Engine) newView(page string) *uiView {
	return &uiView{
		Page: page, Home: e.cfg.UIPrefix, Product: e.uiProduct(), Logo: e.uiLogo(),
		CSS: e.assetURL("ui.css"), Theme: e.assetURL("theme.css"),
		JS: e.assetURL("ui.js"), Icon: e.assetURL("favicon.svg"),
	}
}
