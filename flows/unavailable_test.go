package flows

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// downStore is a store whose database can be switched off: every call
// then fails as the PostgreSQL engine fails when its server is down.
type downStore struct {
	sessionstore.Storage
	down atomic.Bool
}

func (d *downStore) err() error {
	if d.down.Load() {
		return fmt.Errorf("%w: dial tcp 127.0.0.1:5432: connect: connection refused", sessionstore.ErrUnavailable)
	}
	return nil
}

func (d *downStore) CreateIdentity(ctx context.Context, id *sessionstore.Identity) error {
	if err := d.err(); err != nil {
		return err
	}
	return d.Storage.CreateIdentity(ctx, id)
}
func (d *downStore) UpdateIdentity(ctx context.Context, id *sessionstore.Identity) error {
	if err := d.err(); err != nil {
		return err
	}
	return d.Storage.UpdateIdentity(ctx, id)
}
func (d *downStore) ModifyIdentity(ctx context.Context, id string, fn func(*sessionstore.Identity) error) (*sessionstore.Identity, error) {
	if err := d.err(); err != nil {
		return nil, err
	}
	return d.Storage.ModifyIdentity(ctx, id, fn)
}
func (d *downStore) GetIdentity(ctx context.Context, id string) (*sessionstore.Identity, error) {
	if err := d.err(); err != nil {
		return nil, err
	}
	return d.Storage.GetIdentity(ctx, id)
}
func (d *downStore) GetIdentityShared(ctx context.Context, id string) (*sessionstore.Identity, error) {
	if err := d.err(); err != nil {
		return nil, err
	}
	return d.Storage.GetIdentityShared(ctx, id)
}
func (d *downStore) FindIdentityByCredential(ctx context.Context, t, ident string) (*sessionstore.Identity, error) {
	if err := d.err(); err != nil {
		return nil, err
	}
	return d.Storage.FindIdentityByCredential(ctx, t, ident)
}
func (d *downStore) CreateSession(ctx context.Context, s *sessionstore.Session) error {
	if err := d.err(); err != nil {
		return err
	}
	return d.Storage.CreateSession(ctx, s)
}
func (d *downStore) GetSessionByTokenHash(ctx context.Context, h []byte) (*sessionstore.Session, error) {
	if err := d.err(); err != nil {
		return nil, err
	}
	return d.Storage.GetSessionByTokenHash(ctx, h)
}
func (d *downStore) GetSession(ctx context.Context, id string) (*sessionstore.Session, error) {
	if err := d.err(); err != nil {
		return nil, err
	}
	return d.Storage.GetSession(ctx, id)
}
func (d *downStore) ListSessionsByIdentity(ctx context.Context, id string) ([]*sessionstore.Session, error) {
	if err := d.err(); err != nil {
		return nil, err
	}
	return d.Storage.ListSessionsByIdentity(ctx, id)
}
func (d *downStore) RevokeSession(ctx context.Context, id string) error {
	if err := d.err(); err != nil {
		return err
	}
	return d.Storage.RevokeSession(ctx, id)
}
func (d *downStore) PutRecord(ctx context.Context, ns, key string, v []byte, ttl time.Duration) error {
	if err := d.err(); err != nil {
		return err
	}
	return d.Storage.PutRecord(ctx, ns, key, v, ttl)
}
func (d *downStore) GetRecord(ctx context.Context, ns, key string) ([]byte, error) {
	if err := d.err(); err != nil {
		return nil, err
	}
	return d.Storage.GetRecord(ctx, ns, key)
}
func (d *downStore) TakeRecord(ctx context.Context, ns, key string) ([]byte, error) {
	if err := d.err(); err != nil {
		return nil, err
	}
	return d.Storage.TakeRecord(ctx, ns, key)
}
func (d *downStore) UpdateRecord(ctx context.Context, ns, key string, fn func([]byte) ([]byte, time.Duration, error)) error {
	if err := d.err(); err != nil {
		return err
	}
	return d.Storage.UpdateRecord(ctx, ns, key, fn)
}

// TestStorageDownAnswers503: with the database unreachable, whoami, the
// gate's check, flow creation, a login submit and /sessions answer 503
// in Kratos's error shape with Retry-After — never a 500, never a pass
// — and everything works again when it returns, without a restart.
func TestStorageDownAnswers503(t *testing.T) {
	st, err := sessionstore.Open(t.TempDir(), sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ds := &downStore{Storage: st}
	var e *Engine
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	e, err = New(Config{
		SiteOptions:     SiteOptions{PublicURL: srv.URL + "/"},
		BrowserOptions:  BrowserOptions{Dev: true},
		PasswordOptions: PasswordOptions{BcryptCost: 4},
		FormOptions:     FormOptions{RegistrationStyle: "unified"},
	}, ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	token := registerNative(t, srv.URL, "down@example.com")
	login := do(t, nil, "GET", srv.URL+"/self-service/login/api", nil, nil)
	loginAction := actionOf(t, login)
	auth := map[string]string{"X-Session-Token": token}

	ds.down.Store(true)
	want503 := func(what string, r resp) {
		t.Helper()
		errObj, _ := r.body["error"].(map[string]any)
		if r.status != http.StatusServiceUnavailable || errObj == nil || errObj["code"] != float64(503) ||
			errObj["status"] != "Service Unavailable" || r.header.Get("Retry-After") == "" {
			t.Errorf("%s with the database down: %d %v %s, want 503 in Kratos's shape with Retry-After", what, r.status, r.header, r.raw)
		}
	}
	want503("whoami", do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, auth))
	want503("GET /sessions", do(t, nil, "GET", srv.URL+"/sessions", nil, auth))
	want503("login flow creation", do(t, nil, "GET", srv.URL+"/self-service/login/api", nil, nil))
	want503("login submit", do(t, nil, "POST", loginAction, map[string]any{"method": "password", "identifier": "down@example.com", "password": "Gx7!qVt2#pLr9$wZk4"}, nil))
	want503("registration flow creation", do(t, nil, "GET", srv.URL+"/self-service/registration/api", nil, nil))

	req := httptest.NewRequest("GET", "/app", nil)
	req.Header.Set("X-Session-Token", token)
	var gs GateSession
	err = e.CheckGate(httptest.NewRecorder(), req, GatePolicy{}, &gs)
	if !IsUnavailable(err) {
		t.Errorf("CheckGate with the database down: %v, want an unavailable error", err)
	}
	if errors.Is(err, ErrNoSession) {
		t.Error("an unreachable database was taken for no session")
	}

	ds.down.Store(false)
	if r := do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, auth); r.status != 200 {
		t.Fatalf("whoami after the database returned: %d %s", r.status, r.raw)
	}
	if r := do(t, nil, "POST", loginAction, map[string]any{"method": "password", "identifier": "down@example.com", "password": "Gx7!qVt2#pLr9$wZk4"}, nil); r.status != 200 {
		t.Fatalf("login after the database returned: %d %s", r.status, r.raw)
	}
}
