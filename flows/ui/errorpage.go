package ui

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
)

func (p *Pages) errorPage(w http.ResponseWriter, r *http.Request) {
	l := p.localizer(r)
	v := p.newView(l, "error")
	v.Title, v.Subtitle = l.Page("error.title"), l.Page("error.subtitle")
	ev := &errorView{}
	status := http.StatusOK
	if fe := p.loadStoredFlowError(r); fe != nil && fe.Error != nil {
		ev.Found = true
		// Kratos's fixed error texts in the page's language; others
		// (with values in them) as the engine wrote them.
		ev.Code, ev.Status, ev.Message, ev.Reason = fe.Error.Code, fe.Error.Status, l.Known(fe.Error.Message), l.Known(fe.Error.Reason)
		ev.ID = fe.ID
		if to, ok := fe.Error.Details["redirect_to"].(string); ok && cspOrigin(to) != "" {
			ev.Retry = to
		}
	} else {
		status = http.StatusNotFound
		ev.Message = l.Page("error.notfound")
	}
	v.Error = ev
	if sess, err := p.sessions.Current(r); err == nil {
		p.accountNav(r, v, sess, "")
	}
	v.LoginURL = p.urls.Public("self-service/login/browser")
	v.Picker = p.picker(r, v.Lang, p.kernel.EnsureCSRF(w, r))
	p.pageHeaders(w, r, nil)
	p.render(w, status, v)
}

func (p *Pages) loadStoredFlowError(r *http.Request) *flow.FlowError {
	id := r.URL.Query().Get("id")
	if _, err := uuid.Parse(id); err != nil {
		return nil
	}
	fe, err := p.kernel.LoadError(r.Context(), id)
	if err != nil {
		return nil
	}
	return fe
}
