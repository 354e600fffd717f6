package flows

import (
	"fmt"
)

type textDef struct {
	typ string
	tpl string
}

// Text is Kratos's UiText.
type Text struct {
	ID      int            `json:"id"`
	Text    string         `json:"text"`
	Type    string         `json:"type"`
	Context map[string]any `json:"context,omitempty"`
}

// newText renders catalogue entry id with args (Go verbs of the template)
// and context.
func newText(id int, ctx map[string]any, args ...any) Text {
	def, ok := catalogue[id]
	if !ok {
		def = textDef{typ: "info", tpl: "%s"}
	}
	s := def.tpl
	if len(args) > 0 {
		s = fmt.Sprintf(def.tpl, args...)
	}
	return Text{ID: id, Text: s, Type: def.typ, Context: ctx}
}

// textReason is the generic 4000001 (and 5000001) text whose text is the reason.
func textReason(id int, reason string) Text {
	return Text{ID: id, Text: reason, Type: "error", Context: map[string]any{"reason": reason}}
}

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

// Container is the flow's ui object.
type Container struct {
	Action   string  `json:"action"`
	Method   string  `json:"method"`
	Nodes    []*Node `json:"nodes"`
	Messages []Text  `json:"messages,omitempty"`
}

func inputNode(group, name, typ string, label *Text) *Node {
	return &Node{Type: "input", Group: group, Messages: []Text{}, Meta: Meta{Label: label},
		Attributes: &InputAttrs{Name: name, Type: typ, NodeType: "input"}}
}

func labelOf(id int, ctx map[string]any, args ...any) *Text {
	t := newText(id, ctx, args...)
	return &t
}

// input returns the node's input attributes (nil for other node types).
func (n *Node) input() *InputAttrs {
	a, _ := n.Attributes.(*InputAttrs)
	return a
}

func (n *Node) required() *Node             { n.input().Required = true; return n }
func (n *Node) autocomplete(s string) *Node { n.input().Autocomplete = s; return n }
func (n *Node) value(v any) *Node           { n.input().Value = v; return n }

func submitNode(group, name string, value any, label *Text) *Node {
	return inputNode(group, name, "submit", label).value(value)
}

func csrfNode(token string) *Node {
	n := inputNode("default", "csrf_token", "hidden", nil).required()
	// Value is an interface: "" is emitted, as Kratos does for API flows.
	n.input().Value = token
	return n
}

// findNode returns the first node with that input name (and group, if set).
func (c *Container) findNode(name string) *Node {
	for _, n := range c.Nodes {
		if a := n.input(); a != nil && a.Name == name {
			return n
		}
	}
	return nil
}

// nodeIndexByID returns the index of the text node with that id, or -1.
func (c *Container) nodeIndexByID(id string) int {
	for i, n := range c.Nodes {
		if a, ok := n.Attributes.(*TextAttrs); ok && a.ID == id {
			return i
		}
	}
	return -1
}

// resetMessages clears flow and node messages, as Kratos does before each
// error rendering.
func (c *Container) resetMessages() {
	c.Messages = nil
	for _, n := range c.Nodes {
		n.Messages = []Text{}
	}
}

// addMessage adds a message to the node named name, or to the flow when no
// such node exists.
func (c *Container) addNodeMessage(name string, t Text) {
	if n := c.findNode(name); n != nil {
		n.Messages = append(n.Messages, t)
		return
	}
	n := inputNode("default", name, "text", nil)
	n.Messages = append(n.Messages, t)
	c.Nodes = append(c.Nodes, n)
}

// setValue sets the value of every input node called name.
func (c *Container) setValue(name string, v any) {
	for _, n := range c.Nodes {
		if a := n.input(); a != nil && a.Name == name {
			a.Value = v
		}
	}
}

// removeGroup removes every node of group g.
func (c *Container) removeGroup(g string) {
	out := c.Nodes[:0]
	for _, n := range c.Nodes {
		if n.Group != g {
			out = append(out, n)
		}
	}
	c.Nodes = out
}
