package flows

import (
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// addresses derives verifiable and recovery addresses from traits marked
// with ory.sh/kratos verification.via / recovery.via.
func (e *Engine) addresses(traits map[string]any, now time.Time) ([]sessionstore.VerifiableAddress, []sessionstore.RecoveryAddress) {
	ver := []sessionstore.VerifiableAddress{}
	rec := []sessionstore.RecoveryAddress{}
	for _, f := range e.schema.Fields {
		v, ok := lookupPath(traits, f.Path)
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok || strings.TrimSpace(s) == "" {
			continue
		}
		val := s
		if f.Format == "email" || f.VerificationVia == "email" || f.RecoveryVia == "email" {
			val = strings.ToLower(strings.TrimSpace(s))
		}
		if f.VerificationVia != "" {
			ver = append(ver, sessionstore.VerifiableAddress{ID: uuid.NewString(), Value: val, Via: f.VerificationVia,
				Status: "pending", CreatedAt: now, UpdatedAt: now})
		}
		if f.RecoveryVia != "" {
			rec = append(rec, sessionstore.RecoveryAddress{ID: uuid.NewString(), Value: val, Via: f.RecoveryVia,
				CreatedAt: now, UpdatedAt: now})
		}
	}
	return ver, rec
}
