package caddymodule

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

// gateDenials is what the gate needs of the audit trail (*audit.Trail):
// it tallies refusals in memory and writes one record per gate and
// reason a minute, so refusing costs no storage write.
type gateDenials interface {
	GateDenied(gate, reason, ip string)
}

// useAuditTrail makes the gate record its refusals in the app's trail.
func (g *Gate) useAuditTrail(app *App) {
	if app.trail != nil {
		g.denials = app.trail
	}
}

// recordDenial tallies a refusal of the session check (err, from
// CheckGate): no session, a second factor due, or one to set up. A
// storage outage (503) and internal errors are no denial.
func (g *Gate) recordDenial(r *http.Request, err error) {
	if g.denials == nil {
		return
	}
	var reason string
	switch {
	case errors.Is(err, flows.ErrNoSession):
		reason = "no_session"
	case errors.Is(err, flows.ErrAAL2Required):
		reason = "aal2_required"
	case errors.Is(err, flows.ErrAAL2SetupRequired):
		reason = "aal2_setup_required"
	default:
		return
	}
	g.denials.GateDenied(g.auditName(r), reason, clientIP(r))
}

// auditName names the gate in the audit trail: its name option, else the
// host the request was addressed to (lower case, without the port; the
// trail bounds how many distinct names a minute it keeps).
func (g *Gate) auditName(r *http.Request) string {
	if g.Name != "" {
		return g.Name
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if len(host) > 253 {
		host = host[:253]
	}
	return strings.ToLower(host)
}
