package flows

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
)

func (e *Engine) uiErrorPage(w http.ResponseWriter, r *http.Request) {
	v := e.newView("error")
	v.Title, v.Subtitle = tr("error.title"), tr("error.subtitle")
	ev := &uiErrorView{}
	status := http.StatusOK
	if fe := e.loadStoredFlowError(r); fe != nil && fe.Error != nil {
		ev.Found = true
		ev.Code, ev.Status, ev.Message, ev.Reason = fe.Error.Code, fe.Error.Status, fe.Error.Message, fe.Error.Reason
		ev.ID = fe.ID
		if to, ok := fe.Error.Details["redirect_to"].(string); ok && cspOrigin(to) != "" {
			ev.Retry = to
		}
	} else {
		status = http.StatusNotFound
		ev.Message = tr("error.notfound")
	}
	v.Error = ev
	if sess, err := e.sessions.Current(r); err == nil {
		e.accountNav(r, v, sess, "")
	}
	v.LoginURL = e.urls.Public("self-service/login/browser")
	e.pageHeaders(w, r, nil)
	e.render(w, status, v)
}

func (e *Engine) loadStoredFlowError(r *http.Request) *flow.FlowError {
	id := r.URL.Query().Get("id")
	if _, err := uuid.Parse(id); err != nil {
		return nil
	}
	fe, err := e.kernel.LoadError(r.Context(), id)
	if err != nil {
		return nil
	}
	return fe
}
