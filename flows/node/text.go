package node

import (
	"fmt"
)

// textDef is a catalogue entry: the message type and its English template.
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

// NewText renders catalogue entry id with args (Go verbs of the template)
// and context.
func NewText(id int, ctx map[string]any, args ...any) Text {
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

// TextReason is the generic 4000001 (and 5000001) text whose text is the reason.
func TextReason(id int, reason string) Text {
	return Text{ID: id, Text: reason, Type: "error", Context: map[string]any{"reason": reason}}
}

// Label is NewText as a node label.
func Label(id int, ctx map[string]any, args ...any) *Text {
	t := NewText(id, ctx, args...)
	return &t
}
