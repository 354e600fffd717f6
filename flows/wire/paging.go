package wire

import (
	"net/http"
	"strings"
)

// Link is one entry of a pagination Link header: the URL of a page and its
// relation (first, prev, next, last).
type Link struct {
	Rel string
	URL string
}

// SetLinks writes the Link header of a paginated list: each link as
// <url>; rel="rel", comma-separated, in the order given. Every list the
// engine serves (schemas, sessions, admin identities and sessions) writes
// its header here; which pages it links, and in which URL form, is the
// list's own (Kratos's endpoints differ).
func SetLinks(w http.ResponseWriter, links ...Link) {
	w.Header().Set("Link", FormatLinks(links...))
}

// FormatLinks is the value of the Link header SetLinks writes.
func FormatLinks(links ...Link) string {
	var b strings.Builder
	for i, l := range links {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('<')
		b.WriteString(l.URL)
		b.WriteString(`>; rel="`)
		b.WriteString(l.Rel)
		b.WriteByte('"')
	}
	return b.String()
}
