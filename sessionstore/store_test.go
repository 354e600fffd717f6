package sessionstore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

func openStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = func(level, format string, args ...any) {
			t.Logf("badger %s: "+format, append([]any{level}, args...)...)
		}
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newStore(t testing.TB) *Store {
	t.Helper()
	return openStore(t, t.TempDir(), Options{})
}

func newIdentity(id, email string) *Identity {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return &Identity{
		ID:             id,
		SchemaID:       "default",
		State:          "active",
		StateChangedAt: now,
		Traits:         json.RawMessage(fmt.Sprintf(`{"email":%q}`, email)),
		CreatedAt:      now,
		UpdatedAt:      now,
		Credentials: map[string]Credential{
			"password": {
				Type:        "password",
				Identifiers: []string{email},
				Config:      json.RawMessage(`{"hashed_password":"x"}`),
				Version:     0,
				CreatedAt:   now,
				UpdatedAt:   now,
			},
		},
	}
}

func tokenHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func newSession(id, identityID string, issued time.Time, ttl time.Duration) *Session {
	return &Session{
		ID:              id,
		IdentityID:      identityID,
		Active:          true,
		ExpiresAt:       issued.Add(ttl),
		AuthenticatedAt: issued,
		IssuedAt:        issued,
		AAL:             "aal1",
		AuthenticationMethods: []AuthMethod{
			{Method: "password", AAL: "aal1", CompletedAt: issued},
		},
		Devices:         []Device{{ID: "d-" + id, Location: "here"}},
		TokenHash:       tokenHash("tok-" + id),
		LogoutTokenHash: tokenHash("lo-" + id),
	}
}

func TestCloseWaitsForInflight(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for i := range 10 {
		if err := s.PutRecord(ctx, "ns", fmt.Sprint(i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	started := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		first := true
		// A callback calling back into the store while Close waits must
		// not deadlock: inner calls just see ErrClosed.
		_ = s.ScanRecords(ctx, "ns", func(string, []byte) error {
			if first {
				close(started)
				first = false
			}
			time.Sleep(5 * time.Millisecond)
			_, _ = s.GetRecord(ctx, "ns", "0")
			return nil
		})
	}()
	<-started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openStore(t, dir, Options{})
	ident := newIdentity("11111111-0000-0000-0000-000000000001", "durable@example.com")
	if err := s.CreateIdentity(ctx, ident); err != nil {
		t.Fatal(err)
	}
	sess := newSession("s1", ident.ID, time.Now(), time.Hour)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(ctx, "flow", "f1", []byte("flowdata"), time.Hour); err != nil {
		t.Fatal(err)
	}
	sec, err := s.Secret(ctx, "cookie", func() ([]byte, error) { return []byte("s3cr3t"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openStore(t, dir, Options{})
	got, err := s2.FindIdentityByCredential(ctx, "password", "durable@example.com")
	if err != nil || got.ID != ident.ID {
		t.Fatalf("identity after reopen: %v %v", got, err)
	}
	gs, err := s2.GetSessionByTokenHash(ctx, sess.TokenHash)
	if err != nil || gs.ID != "s1" || !gs.Active {
		t.Fatalf("session after reopen: %+v %v", gs, err)
	}
	v, err := s2.GetRecord(ctx, "flow", "f1")
	if err != nil || string(v) != "flowdata" {
		t.Fatalf("record after reopen: %q %v", v, err)
	}
	sec2, err := s2.Secret(ctx, "cookie", func() ([]byte, error) { return []byte("other"), nil })
	if err != nil || string(sec2) != string(sec) {
		t.Fatalf("secret after reopen: %q %v", sec2, err)
	}
}

func TestGCLoopRunsAndStops(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{GCInterval: 10 * time.Millisecond})
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.gcDone:
	default:
		t.Fatal("gc goroutine still running after Close")
	}
}
