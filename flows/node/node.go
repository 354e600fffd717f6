package node

import (
	"encoding/json"
)

// Node is a UI node. Attributes is one of the *Attrs types.
type Node struct {
	Type       string `json:"type"`
	Group      string `json:"group"`
	Attributes any    `json:"attributes"`
	Messages   []Text `json:"messages"`
	Meta       Meta   `json:"meta"`
}

// Meta holds the node's label.
type Meta struct {
	Label *Text `json:"label,omitempty"`
}

// InputAttrs are the attributes of an input node, in Kratos's field order.
type InputAttrs struct {
	Name           string `json:"name"`
	Type           string `json:"type"`
	Value          any    `json:"value,omitempty"`
	Required       bool   `json:"required,omitempty"`
	Autocomplete   string `json:"autocomplete,omitempty"`
	Pattern        string `json:"pattern,omitempty"`
	MaxLength      int    `json:"maxlength,omitempty"`
	Label          *Text  `json:"label,omitempty"`
	Options        []any  `json:"options,omitempty"`
	Disabled       bool   `json:"disabled"`
	OnClick        string `json:"onclick,omitempty"`
	OnClickTrigger string `json:"onclickTrigger,omitempty"`
	OnLoad         string `json:"onload,omitempty"`
	OnLoadTrigger  string `json:"onloadTrigger,omitempty"`
	NodeType       string `json:"node_type"`
}

// TextAttrs are the attributes of a text node.
type TextAttrs struct {
	ID       string `json:"id"`
	Text     Text   `json:"text"`
	NodeType string `json:"node_type"`
}

// ImageAttrs are the attributes of an img node.
type ImageAttrs struct {
	ID       string `json:"id"`
	Src      string `json:"src"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	NodeType string `json:"node_type"`
}

// AnchorAttrs are the attributes of an a node.
type AnchorAttrs struct {
	ID       string `json:"id"`
	Href     string `json:"href"`
	Title    Text   `json:"title"`
	NodeType string `json:"node_type"`
}

// ScriptAttrs are the attributes of a script node.
type ScriptAttrs struct {
	ID             string `json:"id"`
	Src            string `json:"src"`
	Async          bool   `json:"async"`
	ReferrerPolicy string `json:"referrerpolicy"`
	CrossOrigin    string `json:"crossorigin"`
	Integrity      string `json:"integrity"`
	Type           string `json:"type"`
	Nonce          string `json:"nonce"`
	NodeType       string `json:"node_type"`
}

// Input is an input node of group called name, of HTML type typ.
func Input(group, name, typ string, label *Text) *Node {
	return &Node{Type: "input", Group: group, Messages: []Text{}, Meta: Meta{Label: label},
		Attributes: &InputAttrs{Name: name, Type: typ, NodeType: "input"}}
}

// Input returns the node's input attributes (nil for other node types).
func (n *Node) Input() *InputAttrs {
	a, _ := n.Attributes.(*InputAttrs)
	return a
}

// Required marks the input required.
func (n *Node) Required() *Node { n.Input().Required = true; return n }

// Autocomplete sets the input's autocomplete hint.
func (n *Node) Autocomplete(s string) *Node { n.Input().Autocomplete = s; return n }

// Value sets the input's value.
func (n *Node) Value(v any) *Node { n.Input().Value = v; return n }

// Submit is a submit button of group called name with value.
func Submit(group, name string, value any, label *Text) *Node {
	return Input(group, name, "submit", label).Value(value)
}

// CSRF is the csrf_token node (hidden, required) with token.
func CSRF(token string) *Node {
	n := Input("default", "csrf_token", "hidden", nil).Required()
	// Value is an interface: "" is emitted, as Kratos does for API flows.
	n.Input().Value = token
	return n
}

// UnmarshalJSON restores typed node attributes.
func (n *Node) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type       string          `json:"type"`
		Group      string          `json:"group"`
		Attributes json.RawMessage `json:"attributes"`
		Messages   []Text          `json:"messages"`
		Meta       Meta            `json:"meta"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	n.Type, n.Group, n.Messages, n.Meta = raw.Type, raw.Group, raw.Messages, raw.Meta
	if n.Messages == nil {
		n.Messages = []Text{}
	}
	var target any
	switch raw.Type {
	case "input":
		target = &InputAttrs{}
	case "text":
		target = &TextAttrs{}
	case "img":
		target = &ImageAttrs{}
	case "a":
		target = &AnchorAttrs{}
	case "script":
		target = &ScriptAttrs{}
	default:
		target = &map[string]any{}
	}
	if err := json.Unmarshal(raw.Attributes, target); err != nil {
		return err
	}
	n.Attributes = target
	return nil
}

// Trigger is an input/button that runs a webauthn.js function; value
// carries the options JSON (Kratos also sets the deprecated onclick).
func Trigger(group, name, fn, options string, label *Text) *Node {
	n := Input(group, name, "button", label).Value(options)
	a := n.Input()
	a.OnClickTrigger = fn
	if options != "" {
		a.OnClick = "window." + fn + "(" + options + ")"
	} else {
		a.OnClick = "window." + fn + "()"
	}
	return n
}
