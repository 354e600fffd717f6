package courier

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestQueuedBodiesSealed: with body secrets, a mail waiting out an SMTP
// outage is stored sealed (the code is nowhere in its record), is
// delivered in clear once the server is back — also by a courier whose
// secrets were rotated since (new first, old still listed) — and a courier
// without the secret cannot deliver it.
func TestQueuedBodiesSealed(t *testing.T) {
	port := freePort(t)
	addr := "127.0.0.1:" + port
	st := openStore(t, t.TempDir())
	cfg := fastConfig(plainURI(addr))
	cfg.BodySecrets = []string{"outbox-secret-0123456789"}
	c := newCourier(t, st, cfg, nil)
	id, err := c.Enqueue(context.Background(), Message{To: "dana@example.org", Template: TemplateRecoveryCodeValid, Data: TemplateData{RecoveryCode: "473829"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetRecord(context.Background(), Namespace, id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "473829") || !strings.Contains(string(raw), `"sealed":`) {
		t.Fatalf("queued record shows the code or is not sealed: %s", raw)
	}

	// A courier without the secret gets nowhere with it.
	nokey := fastConfig(plainURI(addr))
	nokey.MaxAttempts = 1
	other := newCourier(t, st, nokey, nil)
	srv := startSMTP(t, smtpOpts{addr: addr})
	other.Start()
	s := waitState(t, other, id, StateAbandoned, 5*time.Second)
	if !strings.Contains(s.LastError, "cannot be opened") || len(srv.Messages()) != 0 {
		t.Fatalf("a courier without the secret: %+v, %d mails", s, len(srv.Messages()))
	}
	_ = other.Stop(context.Background())

	// A rotated courier delivers a new mail sealed under the old secret.
	id2, err := c.Enqueue(context.Background(), Message{To: "dana@example.org", Template: TemplateRecoveryCodeValid, Data: TemplateData{RecoveryCode: "591026"}})
	if err != nil {
		t.Fatal(err)
	}
	rotated := fastConfig(plainURI(addr))
	rotated.BodySecrets = []string{"outbox-secret-new-000000", "outbox-secret-0123456789"}
	rc := newCourier(t, st, rotated, nil)
	rc.Start()
	msgs := srv.waitMessages(1, 5*time.Second)
	if m := parseMail(t, msgs[0].Raw); !strings.Contains(m.Text, "591026") {
		t.Fatalf("delivered text %q lacks the code", m.Text)
	}
	waitState(t, rc, id2, StateSent, 5*time.Second)
	raw, err = st.GetRecord(context.Background(), Namespace, id2)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "591026") || strings.Contains(string(raw), `"sealed":`) {
		t.Fatalf("sent record keeps the body: %s", raw)
	}
}
