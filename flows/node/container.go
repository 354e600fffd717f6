package node

import "strconv"

// Container is the flow's ui object.
type Container struct {
	Action   string  `json:"action"`
	Method   string  `json:"method"`
	Nodes    []*Node `json:"nodes"`
	Messages []Text  `json:"messages,omitempty"`
}

// Find returns the first node with that input name (and group, if set).
func (c *Container) Find(name string) *Node {
	for _, n := range c.Nodes {
		if a := n.Input(); a != nil && a.Name == name {
			return n
		}
	}
	return nil
}

// IndexByID returns the index of the text node with that id, or -1.
func (c *Container) IndexByID(id string) int {
	for i, n := range c.Nodes {
		if a, ok := n.Attributes.(*TextAttrs); ok && a.ID == id {
			return i
		}
	}
	return -1
}

// ResetMessages clears flow and node messages, as Kratos does before each
// error rendering.
func (c *Container) ResetMessages() {
	c.Messages = nil
	for _, n := range c.Nodes {
		n.Messages = []Text{}
	}
}

// AddNodeMessage adds a message to the node named name, or to the flow when no
// such node exists.
func (c *Container) AddNodeMessage(name string, t Text) {
	if n := c.Find(name); n != nil {
		n.Messages = append(n.Messages, t)
		return
	}
	n := Input("default", name, "text", nil)
	n.Messages = append(n.Messages, t)
	c.Nodes = append(c.Nodes, n)
}

// SetValue sets the value of every input node called name.
func (c *Container) SetValue(name string, v any) {
	for _, n := range c.Nodes {
		if a := n.Input(); a != nil && a.Name == name {
			a.Value = v
		}
	}
}

// RemoveGroup removes every node of group g.
func (c *Container) RemoveGroup(g string) {
	out := c.Nodes[:0]
	for _, n := range c.Nodes {
		if n.Group != g {
			out = append(out, n)
		}
	}
	c.Nodes = out
}

// FindScript returns the script node with that id.
func (c *Container) FindScript(id string) *Node {
	for _, n := range c.Nodes {
		if a, ok := n.Attributes.(*ScriptAttrs); ok && a.ID == id {
			return n
		}
	}
	return nil
}

// SetTrigger updates a trigger node's options (a new challenge).
func (c *Container) SetTrigger(name, fn, options string) {
	if n := c.Find(name); n != nil {
		a := n.Input()
		a.Value = options
		a.OnClick = "window." + fn + "(" + options + ")"
	}
}

// InsertAfterCSRF puts n right after the csrf_token node (default group
// nodes come first).
func (c *Container) InsertAfterCSRF(n *Node) {
	for i, x := range c.Nodes {
		if a := x.Input(); a != nil && a.Name == "csrf_token" {
			c.Nodes = append(c.Nodes[:i+1], append([]*Node{n}, c.Nodes[i+1:]...)...)
			return
		}
	}
	c.Nodes = append([]*Node{n}, c.Nodes...)
}

// FirstErrorID is the id of the first error message on the form or on
// one of its nodes ("" when there is none): what an event records as the
// reason a submit failed.
func (c *Container) FirstErrorID() string {
	for _, t := range c.Messages {
		if t.Type == "error" {
			return strconv.Itoa(t.ID)
		}
	}
	for _, n := range c.Nodes {
		for _, t := range n.Messages {
			if t.Type == "error" {
				return strconv.Itoa(t.ID)
			}
		}
	}
	return ""
}
