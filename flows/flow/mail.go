package flow

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"
)

// Mailer queues a templated message durably before returning.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// Mail is one message for the courier: a Kratos template name (as
// courier.TemplateID: recovery_code_valid, …) and its data.
type Mail struct {
	To       string
	Template string
	// Data fields as Kratos's templates see them.
	RecoveryCode, RecoveryURL         string
	VerificationCode, VerificationURL string
	LoginCode, RegistrationCode       string
	Identity                          map[string]any
	RequestURL                        string
	TransientPayload                  map[string]any
	ExpiresInMinutes                  int
}

// SendMail hands m to the courier (dropped, with a warning, without one).
func (k *Kernel) SendMail(ctx context.Context, m Mail) error {
	if k.cfg.Mailer == nil {
		k.logger.Warn("no mailer configured; message dropped", zap.String("template", m.Template))
		return nil
	}
	return k.cfg.Mailer.Send(ctx, m)
}

// MailIdentity is the identity as templates see it.
func (k *Kernel) MailIdentity(r *http.Request, ident *sessionstore.Identity) map[string]any {
	var m map[string]any
	idJSON, _ := json.Marshal(k.sessions.IdentityJSON(r, ident))
	_ = json.Unmarshal(idJSON, &m)
	return m
}
