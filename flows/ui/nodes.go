package ui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/locale"
)

// nodeVisible reports whether n shows something (hidden inputs and scripts
// do not).
func nodeVisible(n *node.Node) bool {
	switch n.Type {
	case "input":
		a := n.Input()
		return a != nil && a.Type != "hidden"
	case "script":
		return false
	}
	return true
}

func isButton(n *node.Node) bool {
	a := n.Input()
	return a != nil && (a.Type == "submit" || a.Type == "button")
}

var dangerName = regexp.MustCompile(`(^|_)(unlink|remove|disable|delete)$`)

// groupOrder returns the non-default groups in order of first appearance.
func groupOrder(nodes []*node.Node) []string {
	var out []string
	for _, n := range nodes {
		if n.Group != "default" && !slices.Contains(out, n.Group) {
			out = append(out, n.Group)
		}
	}
	return out
}

func groupHeading(l *locale.Localizer, g string) string {
	if s, ok := l.PageOK("group." + g); ok {
		return s
	}
	// A method without a chrome string still gets a readable heading.
	s := strings.ReplaceAll(g, "_", " ")
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// buildForms turns the flow's nodes into forms. When the default group has
// visible fields (identifier, traits) every method shares them, so the flow
// is one form with a section per method group; otherwise each group is its
// own form (settings, second factors, the credential step of registration),
// so one group's required fields never block another group's submit.
func buildForms(v *view, f *flow.Flow) {
	l := v.l
	nodes := f.UI.Nodes
	var sharedHidden []hiddenField
	defaultVisible := false
	hasMethodNode := map[string]bool{}
	for _, n := range nodes {
		a := n.Input()
		if a != nil && a.Name == "method" {
			hasMethodNode[n.Group] = true
		}
		if n.Type == "script" {
			if s, ok := n.Attributes.(*node.ScriptAttrs); ok && !slices.ContainsFunc(v.Scripts, func(x *node.ScriptAttrs) bool { return x.Src == s.Src }) {
				v.Scripts = append(v.Scripts, s)
			}
			continue
		}
		if n.Group != "default" {
			continue
		}
		if a != nil && a.Type == "hidden" {
			sharedHidden = append(sharedHidden, hiddenField{a.Name, valueString(a.Value)})
			if s := valueString(a.Value); s != "" && (n.Meta.Label != nil || a.Name == "identifier") {
				label := l.Page("field.account")
				if n.Meta.Label != nil {
					label = message(l, *n.Meta.Label)
				}
				v.Summary = append(v.Summary, summaryLine{Label: label, Value: s})
			}
			v.Messages = append(v.Messages, messages(l, n.Messages)...)
			continue
		}
		if nodeVisible(n) {
			defaultVisible = true
		}
	}
	idx := 0
	groups := groupOrder(nodes)
	settings := f.Kind == "settings"
	// Settings lists a provider linked as the last way to sign in, which
	// has no button, in its own section even when no other provider does.
	var lastRows []*item
	if settings && v.ident != nil {
		shown := map[string]bool{}
		for _, n := range nodesOf(nodes, socialGroup) {
			if a := n.Input(); a != nil {
				shown[valueString(a.Value)] = true
			}
		}
		lastRows = lastProviderRows(l, v.social, v.ident, shown, nextIDOf(&idx))
		if len(lastRows) > 0 && !slices.Contains(groups, socialGroup) {
			groups = append(groups, socialGroup)
		}
	}

	// Headings help when several methods with fields compete; settings
	// always names its sections.
	withFields := 0
	for _, g := range groups {
		for _, n := range nodes {
			if n.Group == g && nodeVisible(n) && !isButton(n) {
				withFields++
				break
			}
		}
	}
	showHeadings := settings || withFields > 1

	nextID := nextIDOf(&idx)
	primaryTaken := false
	newItems := func(form *formView, ns []*node.Node) []*item {
		var items []*item
		for _, n := range ns {
			it := nodeItem(l, n, nextID)
			if it == nil {
				continue
			}
			if it.Kind == "hidden" {
				form.Hidden = append(form.Hidden, hiddenField{it.Name, it.Value})
				continue
			}
			if it.Kind == "trigger" || it.OnLoad != "" {
				v.NeedsJS = true
			}
			if n.Group == socialGroup {
				socialItem(l, v.social, it, n, settings)
			}
			if it.Kind == "submit" || it.Kind == "trigger" {
				switch {
				case dangerName.MatchString(it.Name):
					it.Style = "danger"
				case !primaryTaken:
					it.Style = "primary"
					primaryTaken = true
				default:
					it.Style = "secondary"
				}
			}
			items = append(items, it)
		}
		return items
	}

	socialLabel := l.Page("group.oidc")
	if f.Kind == "registration" {
		socialLabel = l.Page("social.registration")
	}

	if defaultVisible {
		// The providers first, in a form of their own: a provider button
		// posts only the flow's hidden fields, so the required fields of
		// the other ways never block it, with or without JavaScript.
		social := false
		if ns := nodesOf(nodes, socialGroup); len(ns) > 0 && !settings {
			sf := &formView{ID: "form-" + socialGroup, Group: socialGroup, Social: true, Label: socialLabel,
				Action: f.UI.Action, Method: orPOST(f.UI.Method), Hidden: slices.Clone(sharedHidden)}
			if !hasMethodNode[socialGroup] {
				sf.Hidden = append(sf.Hidden, hiddenField{"method", socialGroup})
			}
			if items := newItems(sf, ns); len(items) > 0 {
				sf.Sections = []*section{{Group: socialGroup, Items: items}}
				markNoValidate(sf)
				v.Forms = append(v.Forms, sf)
				social = true
			}
		}
		form := &formView{ID: "form-flow", Action: f.UI.Action, Method: orPOST(f.UI.Method), Hidden: slices.Clone(sharedHidden), Sep: social}
		var def []*node.Node
		for _, n := range nodes {
			if n.Group == "default" && nodeVisible(n) {
				def = append(def, n)
			}
		}
		form.Sections = append(form.Sections, &section{Group: "default", Items: newItems(form, def)})
		methodSections := 0
		for _, g := range groups {
			if social && g == socialGroup {
				continue
			}
			ns := nodesOf(nodes, g)
			sec := &section{Group: g}
			sec.Items = newItems(form, ns)
			if len(sec.Items) == 0 {
				continue
			}
			if isMethodSection(ns) {
				if methodSections > 0 {
					sec.Sep = true
				}
				methodSections++
				if showHeadings {
					sec.Heading = groupHeading(l, g)
				}
			}
			form.Sections = append(form.Sections, sec)
		}
		hiddenMethod := false
		for _, h := range form.Hidden {
			if h.Name == "method" {
				hiddenMethod = true
			}
		}
		// A submit that is not a method choice (Back, Resend) carries no
		// method in a shared form: it submits a small form of its own with
		// the flow's hidden fields and method=<its group>.
		for _, sec := range form.Sections {
			for _, it := range sec.Items {
				if it.Kind == "submit" && it.Name != "method" && !hiddenMethod && sec.Group != "default" {
					alt := &formView{ID: "form-alt-" + strconv.Itoa(len(v.AltForms)+1), Action: form.Action, Method: form.Method,
						Hidden: append(slices.Clone(sharedHidden), hiddenField{"method", sec.Group})}
					it.Form = alt.ID
					it.NoValidate = true
					if it.Style != "danger" {
						it.Style = "quiet"
					}
					v.AltForms = append(v.AltForms, alt)
				}
			}
		}
		markNoValidate(form)
		v.Forms = append(v.Forms, form)
		autofocus(v)
		return
	}

	methodForms := 0
	for _, g := range groups {
		ns := nodesOf(nodes, g)
		form := &formView{ID: "form-" + sanitizeID(g), Group: g, Action: f.UI.Action, Method: orPOST(f.UI.Method), Hidden: slices.Clone(sharedHidden)}
		if !hasMethodNode[g] {
			form.Hidden = append(form.Hidden, hiddenField{"method", g})
		}
		if settings {
			primaryTaken = false
		}
		items := newItems(form, ns)
		if g == socialGroup {
			items = append(items, lastRows...)
		}
		if len(items) == 0 {
			continue
		}
		sec := &section{Group: g, Items: items}
		form.Sections = []*section{sec}
		if g == socialGroup && !settings {
			form.Social, form.Label = true, socialLabel
		}
		if isMethodSection(ns) || settings {
			if showHeadings {
				form.Heading = groupHeading(l, g)
				if settings {
					form.Desc, _ = l.PageOK("desc.settings." + g)
					if g == socialGroup {
						form.Heading = l.Page("settings.group.oidc")
					}
				}
			}
			if methodForms > 0 && !settings {
				form.Sep = true
			}
			methodForms++
		} else {
			// Only auxiliary buttons (Back): quiet, below the methods.
			form.Aux = true
			for _, it := range items {
				if it.Style != "danger" && (it.Kind == "submit" || it.Kind == "trigger") {
					if it.Style == "primary" {
						primaryTaken = false
					}
					it.Style = "quiet"
				}
			}
		}
		markNoValidate(form)
		v.Forms = append(v.Forms, form)
	}
	autofocus(v)
}

// isMethodSection: the group offers a way to complete the flow (a method
// submit, a trigger button or fields), not only auxiliary buttons.
func isMethodSection(ns []*node.Node) bool {
	for _, n := range ns {
		a := n.Input()
		switch {
		case a == nil:
			if nodeVisible(n) {
				return true
			}
		case a.Type == "hidden":
		case a.Type == "submit":
			if a.Name == "method" || a.Name == "provider" || a.Name == "link" {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// markNoValidate: a submit may skip the browser's required-field check when
// its form has required fields of another group, or when it is not the
// method's own submit (Resend, Back, Remove, …): the server validates.
func markNoValidate(form *formView) {
	required := map[string]bool{}
	for _, sec := range form.Sections {
		for _, it := range sec.Items {
			if it.Required && (it.Kind == "field" || it.Kind == "select" || it.Kind == "checkbox") {
				required[sec.Group] = true
			}
		}
	}
	for _, sec := range form.Sections {
		for _, it := range sec.Items {
			if it.Kind != "submit" && it.Kind != "social" && (it.Kind != "provider" || it.Name == "") {
				continue
			}
			if it.Name != "method" {
				it.NoValidate = true
				continue
			}
			for g := range required {
				if g != sec.Group && g != "default" {
					it.NoValidate = true
				}
			}
		}
	}
}

// autofocus focuses the first invalid field, else the first empty field
// of the first form (after the social buttons' form).
func autofocus(v *view) {
	var firstEmpty *item
	first := 0
	if len(v.Forms) > 0 && v.Forms[0].Social {
		first = 1
	}
	for fi, form := range v.Forms {
		for _, sec := range form.Sections {
			for _, it := range sec.Items {
				if it.Kind != "field" || it.Disabled {
					continue
				}
				if it.Invalid {
					it.Autofocus = true
					return
				}
				if firstEmpty == nil && fi == first && it.Value == "" {
					firstEmpty = it
				}
			}
		}
	}
	// Settings opens on its first section without jumping into a field.
	if firstEmpty != nil && len(v.Messages) == 0 && v.Page != "settings" {
		firstEmpty.Autofocus = true
	}
}

// nextIDOf numbers the element ids of a page from *idx.
func nextIDOf(idx *int) func(string) string {
	return func(name string) string {
		*idx++
		return fmt.Sprintf("n%d-%s", *idx, sanitizeID(name))
	}
}

func nodesOf(nodes []*node.Node, g string) []*node.Node {
	var out []*node.Node
	for _, n := range nodes {
		if n.Group == g && n.Type != "script" {
			out = append(out, n)
		}
	}
	return out
}

func orPOST(m string) string {
	if m == "" {
		return "POST"
	}
	return m
}

var nonID = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

func sanitizeID(s string) string { return nonID.ReplaceAllString(s, "-") }

// valueString renders a node value for an HTML attribute.
func valueString(v any) string {
	switch s := v.(type) {
	case nil:
		return ""
	case string:
		return s
	case bool:
		return strconv.FormatBool(s)
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64)
	case json.Number:
		return s.String()
	case int:
		return strconv.Itoa(s)
	default:
		b, _ := json.Marshal(s)
		return string(b)
	}
}

// labelText is the node's label in the page's language, fallback when it
// has none.
func labelText(l *locale.Localizer, n *node.Node, fallback string) string {
	if n.Meta.Label != nil && n.Meta.Label.Text != "" {
		return message(l, *n.Meta.Label)
	}
	if a := n.Input(); a != nil && a.Label != nil && a.Label.Text != "" {
		return message(l, *a.Label)
	}
	return fallback
}

// humanName turns traits.name.first into "First".
func humanName(name string) string {
	parts := strings.Split(name, ".")
	s := strings.ReplaceAll(parts[len(parts)-1], "_", " ")
	if s == "" {
		return name
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

var dataImage = regexp.MustCompile(`^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=]+$`)

// safeSrc accepts data:image URLs (QR codes), absolute paths and http(s).
func safeSrc(s string) template.URL {
	if dataImage.MatchString(s) {
		return template.URL(s) // #nosec G203 -- matched dataImage: a base64 image, nothing executable
	}
	if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") {
		return template.URL(s) // #nosec G203 -- a same-origin path
	}
	if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return template.URL(u.String()) // #nosec G203 -- an http(s) URL; the attribute is still escaped
	}
	return ""
}

// nodeItem renders one node; nil for nodes that render nothing.
func nodeItem(l *locale.Localizer, n *node.Node, nextID func(string) string) *item {
	it := &item{Messages: messages(l, n.Messages), Group: n.Group}
	for _, m := range n.Messages {
		if m.Type == "error" {
			it.Invalid = true
		}
	}
	switch n.Type {
	case "input":
		a := n.Input()
		if a == nil {
			return nil
		}
		it.Name, it.Type, it.Value = a.Name, a.Type, valueString(a.Value)
		it.Required, it.Disabled = a.Required, a.Disabled
		it.Autocomplete, it.Pattern, it.MaxLength = a.Autocomplete, a.Pattern, a.MaxLength
		it.ID = nextID(a.Name)
		switch a.Type {
		case "hidden":
			it.Kind = "hidden"
			if a.OnLoadTrigger != "" {
				// A hidden input with an onload trigger (passkey
				// autocomplete) stays in the DOM where ui.js finds it.
				it.Kind, it.OnLoad = "onload", a.OnLoadTrigger
			}
		case "submit", "button":
			it.Kind = "submit"
			it.Label = labelText(l, n, l.Page("submit"))
			if a.OnClickTrigger != "" || a.Type == "button" {
				it.Kind = "trigger"
				it.Trigger, it.TriggerValue = a.OnClickTrigger, it.Value
			}
		case "checkbox":
			it.Kind = "checkbox"
			it.Label = labelText(l, n, humanName(a.Name))
			it.Checked = a.Value == true || it.Value == "true"
		default:
			it.Kind = "field"
			it.Label = labelText(l, n, humanName(a.Name))
			if it.Autocomplete == "" {
				switch {
				case a.Name == "identifier":
					it.Autocomplete = "username"
				case a.Type == "email":
					it.Autocomplete = "email"
				}
			}
			if len(a.Options) > 0 {
				it.Kind = "select"
				for _, o := range a.Options {
					opt := option{}
					if m, ok := o.(map[string]any); ok {
						opt.Value = valueString(m["value"])
						opt.Label = opt.Value
						if lb, ok := m["label"].(map[string]any); ok {
							if t, ok := lb["text"].(string); ok && t != "" {
								opt.Label = message(l, textOf(lb))
							}
						}
					} else {
						opt.Value = valueString(o)
						opt.Label = opt.Value
					}
					opt.Selected = opt.Value == it.Value
					it.Options = append(it.Options, opt)
				}
			}
		}
		if a.OnLoadTrigger != "" && it.Kind != "onload" {
			it.OnLoad = a.OnLoadTrigger
		}
		return it
	case "text":
		a, ok := n.Attributes.(*node.TextAttrs)
		if !ok {
			return nil
		}
		it.ID = nextID(a.ID)
		it.Kind = "text"
		it.Label = labelText(l, n, "")
		it.Text = message(l, a.Text)
		if secrets, ok := a.Text.Context["secrets"].([]any); ok {
			it.Kind = "codes"
			for _, s := range secrets {
				c := backupCode{}
				switch x := s.(type) {
				case map[string]any:
					c.Text = message(l, textOf(x))
					if id, ok := x["id"].(float64); ok && int(id) == 1050014 {
						c.Used = true
					}
					if ctx, ok := x["context"].(map[string]any); ok {
						if _, used := ctx["used_at"]; used {
							c.Used = true
						}
					}
				case node.Text:
					c.Text, c.Used = message(l, x), x.ID == 1050014
				case string:
					c.Text = x
				}
				it.Codes = append(it.Codes, c)
			}
		} else if secrets, ok := a.Text.Context["secrets"].([]node.Text); ok {
			it.Kind = "codes"
			for _, s := range secrets {
				it.Codes = append(it.Codes, backupCode{Text: message(l, s), Used: s.ID == 1050014})
			}
		} else if sec, ok := a.Text.Context["secret"].(string); ok && sec != "" {
			it.Kind = "secret"
			it.Text = sec
		}
		return it
	case "img":
		a, ok := n.Attributes.(*node.ImageAttrs)
		if !ok {
			return nil
		}
		it.Kind, it.ID = "img", nextID(a.ID)
		it.Src, it.Width, it.Height = safeSrc(a.Src), a.Width, a.Height
		it.Label = labelText(l, n, "")
		if it.Src == "" {
			return nil
		}
		return it
	case "a":
		a, ok := n.Attributes.(*node.AnchorAttrs)
		if !ok {
			return nil
		}
		it.Kind, it.ID = "a", nextID(a.ID)
		if !strings.HasPrefix(a.Href, "data:") {
			it.Href = safeSrc(a.Href)
		}
		it.Text = message(l, a.Title)
		if it.Href == "" {
			return nil
		}
		return it
	case "script":
		return nil
	default:
		// div and any node type added later: id, class and data-*.
		var m map[string]any
		if b, err := json.Marshal(n.Attributes); err == nil {
			_ = json.Unmarshal(b, &m)
		}
		it.Kind = "div"
		id, _ := m["id"].(string)
		it.ID = nextID(id)
		it.Class, _ = m["class"].(string)
		if d, ok := m["data"].(map[string]any); ok {
			it.Data = map[string]string{}
			for k, v := range d {
				it.Data[sanitizeID(k)] = valueString(v)
			}
		}
		it.Label = labelText(l, n, "")
		return it
	}
}

// textOf reads a UI text that reached the page as JSON (an option's label,
// an entry of the backup codes list).
func textOf(m map[string]any) node.Text {
	t := node.Text{}
	t.Text, _ = m["text"].(string)
	t.Type, _ = m["type"].(string)
	if id, ok := m["id"].(float64); ok {
		t.ID = int(id)
	}
	t.Context, _ = m["context"].(map[string]any)
	return t
}
