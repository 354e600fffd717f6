package wire

import (
	"fmt"
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

// PageLinks are the links of a list paginated in the page form (page,
// per_page; pages count from 0): first, prev and next when they exist,
// and last when there is a next page.
func PageLinks(path string, page, perPage, total int) []Link {
	last := 0
	if total > 0 {
		last = (total - 1) / perPage
	}
	link := func(p int, rel string) Link {
		return Link{Rel: rel, URL: fmt.Sprintf("%s?page=%d&per_page=%d", path, p, perPage)}
	}
	links := []Link{link(0, "first")}
	if page > 0 {
		links = append(links, link(page-1, "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	return links
}
