package admin

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// page is a list's page as Kratos's pagination parameters ask for it.
// Keyset (page_size, page_token) is the default; the deprecated
// per_page/page pair selects offset pagination (page counts from 0).
type page struct {
	size   int
	token  string
	offset int // page * per_page, when paged
	paged  bool
}

func parsePage(q url.Values) (page, *wire.Error) {
	p := page{size: 250, token: q.Get("page_token")}
	atoi := func(name string) (int, *wire.Error) {
		var n int
		if _, err := fmt.Sscan(q.Get(name), &n); err != nil {
			return 0, wire.BadRequest(fmt.Sprintf("The query parameter %s must be an integer.", name))
		}
		return n, nil
	}
	if q.Get("page_size") != "" {
		n, err := atoi("page_size")
		if err != nil {
			return p, err
		}
		p.size = min(max(n, 1), 500)
	}
	if p.token == "" && (q.Get("per_page") != "" || q.Get("page") != "") {
		p.paged = true
		if q.Get("per_page") != "" {
			n, err := atoi("per_page")
			if err != nil {
				return p, err
			}
			p.size = min(max(n, 1), 1000)
		}
		if q.Get("page") != "" {
			n, err := atoi("page")
			if err != nil {
				return p, err
			}
			p.offset = max(n, 0) * p.size
		}
	}
	return p, nil
}

// setLinks writes the Link header of the page in the form it was asked
// for; next is the token of the next page ("" on the last one). Keyset
// links are first and next; page links first, next and prev. Each link is
// the request's URL with its pagination parameters replaced.
func (p page) setLinks(w http.ResponseWriter, r *http.Request, next string) {
	link := func(rel string, set func(q url.Values)) wire.Link {
		u := selfURL(r)
		q := r.URL.Query()
		set(q)
		u.RawQuery = q.Encode()
		return wire.Link{Rel: rel, URL: u.String()}
	}
	if p.paged {
		n := p.offset / p.size
		at := func(rel string, n int) wire.Link {
			return link(rel, func(q url.Values) {
				q.Set("per_page", fmt.Sprint(p.size))
				q.Set("page", fmt.Sprint(n))
			})
		}
		links := []wire.Link{at("first", 0)}
		if next != "" {
			links = append(links, at("next", n+1))
		}
		if n > 0 {
			links = append(links, at("prev", n-1))
		}
		wire.SetLinks(w, links...)
		return
	}
	at := func(rel, token string) wire.Link {
		return link(rel, func(q url.Values) {
			q.Del("page")
			q.Del("per_page")
			q.Set("page_size", fmt.Sprint(p.size))
			if token == "" {
				q.Del("page_token")
			} else {
				q.Set("page_token", token)
			}
		})
	}
	links := []wire.Link{at("first", "")}
	if next != "" {
		links = append(links, at("next", next))
	}
	wire.SetLinks(w, links...)
}
