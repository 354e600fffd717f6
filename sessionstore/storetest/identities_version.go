package storetest

import (
	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"

	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
)

// Optimistic identity writes (issue 11, item 10): a copy read before
// another write must never be stored over it.

func testUpdateIdentityRefusesStaleCopy(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	if err := s.CreateIdentity(ctx, NewIdentity("id-v", "v@example.com")); err != nil {
		t.Fatal(err)
	}
	a, _ := s.GetIdentity(ctx, "id-v")
	b, _ := s.GetIdentity(ctx, "id-v") // the same version, read "before hashing"
	a.State = "inactive"
	if err := s.UpdateIdentity(ctx, a); err != nil {
		t.Fatal(err)
	}
	if a.Version != 1 {
		t.Fatalf("caller's version after update = %d, want 1", a.Version)
	}
	c := b.Credentials["password"]
	c.Config = json.RawMessage(`{"hashed_password":"new"}`)
	b.Credentials["password"] = c
	err := s.UpdateIdentity(ctx, b)
	if !errors.Is(err, ss.ErrConflict) {
		t.Fatalf("stale write: %v, want ss.ErrConflict", err)
	}
	if b.Version != 0 {
		t.Fatalf("a refused write moved the caller's version to %d", b.Version)
	}
	got, _ := s.GetIdentity(ctx, "id-v")
	if got.State != "inactive" || string(got.Credentials["password"].Config) != `{"hashed_password":"x"}` || got.Version != 1 {
		t.Fatalf("after the refused write: state %q config %s version %d", got.State, got.Credentials["password"].Config, got.Version)
	}
	// The same copy, used again after its own successful write, is current.
	a.MetadataPublic = json.RawMessage(`{"k":1}`)
	if err := s.UpdateIdentity(ctx, a); err != nil || a.Version != 2 {
		t.Fatalf("second update of the same copy: %v, version %d", err, a.Version)
	}
}

// A write that lands between ModifyIdentity's read and its write makes it
// re-read and re-apply its function to the new identity.
func testModifyIdentityReappliesOnConflict(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	if err := s.CreateIdentity(ctx, NewIdentity("id-m", "m@example.com")); err != nil {
		t.Fatal(err)
	}
	var runs int
	var sawStates []string
	up, err := s.ModifyIdentity(ctx, "id-m", func(id *ss.Identity) error {
		runs++
		sawStates = append(sawStates, id.State)
		if runs == 1 {
			// The admin deactivates while the password is being hashed.
			if _, err := s.ModifyIdentity(ctx, "id-m", func(id *ss.Identity) error {
				id.State = "inactive"
				return nil
			}); err != nil {
				return err
			}
		}
		c := id.Credentials["password"]
		c.Config = json.RawMessage(`{"hashed_password":"new"}`)
		id.Credentials["password"] = c
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if runs != 2 || sawStates[0] != "active" || sawStates[1] != "inactive" {
		t.Fatalf("runs %d, states seen %v; want 2 runs, the second on the deactivated identity", runs, sawStates)
	}
	got, _ := s.GetIdentity(ctx, "id-m")
	if got.State != "inactive" || string(got.Credentials["password"].Config) != `{"hashed_password":"new"}` || got.Version != 2 {
		t.Fatalf("stored: state %q config %s version %d", got.State, got.Credentials["password"].Config, got.Version)
	}
	if up.Version != got.Version || up.State != "inactive" {
		t.Fatalf("returned identity is not the stored one: %+v", up)
	}
}

func testModifyIdentityNoChangeAndErrors(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	if err := s.CreateIdentity(ctx, NewIdentity("id-n", "n@example.com")); err != nil {
		t.Fatal(err)
	}
	got, err := s.ModifyIdentity(ctx, "id-n", func(*ss.Identity) error { return ss.ErrNoChange })
	if err != nil || got == nil || got.ID != "id-n" {
		t.Fatalf("ss.ErrNoChange: %v %v", got, err)
	}
	if cur, _ := s.GetIdentity(ctx, "id-n"); cur.Version != 0 {
		t.Fatalf("ss.ErrNoChange wrote: version %d", cur.Version)
	}
	boom := errors.New("boom")
	if _, err := s.ModifyIdentity(ctx, "id-n", func(id *ss.Identity) error { id.State = "x"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("fn error: %v", err)
	}
	if cur, _ := s.GetIdentity(ctx, "id-n"); cur.State != "active" || cur.Version != 0 {
		t.Fatalf("a failed fn wrote: %+v", cur)
	}
	if _, err := s.ModifyIdentity(ctx, "missing", func(*ss.Identity) error { return nil }); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("missing identity: %v", err)
	}
	if _, err := s.ModifyIdentity(ctx, "id-n", func(id *ss.Identity) error { id.ID = "other"; return nil }); err == nil {
		t.Fatal("fn changed the id and ModifyIdentity stored it")
	}
	// fn cannot move the version to sneak a stale write through.
	if _, err := s.ModifyIdentity(ctx, "id-n", func(id *ss.Identity) error { id.Version = 99; id.State = "inactive"; return nil }); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.GetIdentity(ctx, "id-n"); cur.Version != 1 || cur.State != "inactive" {
		t.Fatalf("version after a write = %d (state %q), want 1", cur.Version, cur.State)
	}
}

// ModifyIdentity gives up with ss.ErrConflict when every attempt loses.
func testModifyIdentityBoundedRetries(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	if err := s.CreateIdentity(ctx, NewIdentity("id-b", "b@example.com")); err != nil {
		t.Fatal(err)
	}
	runs := 0
	_, err := s.ModifyIdentity(ctx, "id-b", func(id *ss.Identity) error {
		runs++
		// Someone else always writes first.
		if _, err := s.ModifyIdentity(ctx, "id-b", func(o *ss.Identity) error {
			o.MetadataAdmin = json.RawMessage(fmt.Sprintf(`{"n":%d}`, runs))
			return nil
		}); err != nil {
			return err
		}
		id.State = "inactive"
		return nil
	})
	if !errors.Is(err, ss.ErrConflict) || runs != ss.MaxModifyAttempts {
		t.Fatalf("err %v after %d runs, want ss.ErrConflict after %d", err, runs, ss.MaxModifyAttempts)
	}
	if cur, _ := s.GetIdentity(ctx, "id-b"); cur.State != "active" || cur.Version != uint64(ss.MaxModifyAttempts) {
		t.Fatalf("after giving up: state %q version %d", cur.State, cur.Version)
	}
}

// Many concurrent writers of different fields: every change survives.
func testModifyIdentityConcurrentWritersKeepEveryChange(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	if err := s.CreateIdentity(ctx, NewIdentity("id-c", "c@example.com")); err != nil {
		t.Fatal(err)
	}
	const n = 24
	var wg sync.WaitGroup
	var failures atomic.Int64
	run := func(fn func(*ss.Identity) error) {
		defer wg.Done()
		if _, err := s.ModifyIdentity(ctx, "id-c", fn); err != nil {
			failures.Add(1)
			t.Errorf("modify: %v", err)
		}
	}
	for i := range n {
		wg.Add(3)
		// A trait per writer.
		go run(func(id *ss.Identity) error {
			var traits map[string]any
			if err := json.Unmarshal(id.Traits, &traits); err != nil {
				return err
			}
			traits[fmt.Sprintf("t%d", i)] = i
			id.Traits, _ = json.Marshal(traits)
			return nil
		})
		// A credential per writer (with an indexed identifier).
		go run(func(id *ss.Identity) error {
			typ := fmt.Sprintf("cred%d", i)
			id.Credentials[typ] = ss.Credential{Type: typ, Identifiers: []string{fmt.Sprintf("handle-%d", i)}}
			return nil
		})
		// An address per writer.
		go run(func(id *ss.Identity) error {
			id.VerifiableAddresses = append(id.VerifiableAddresses, ss.VerifiableAddress{
				ID: fmt.Sprint(i), Value: fmt.Sprintf("a%d@example.com", i), Via: "email", Status: "pending"})
			return nil
		})
	}
	wg.Add(1)
	go run(func(id *ss.Identity) error { id.State = "inactive"; return nil })
	wg.Wait()
	if failures.Load() > 0 {
		t.FailNow()
	}
	got, err := s.GetIdentity(ctx, "id-c")
	if err != nil {
		t.Fatal(err)
	}
	var traits map[string]any
	_ = json.Unmarshal(got.Traits, &traits)
	var missing []string
	for i := range n {
		if _, ok := traits[fmt.Sprintf("t%d", i)]; !ok {
			missing = append(missing, fmt.Sprintf("trait t%d", i))
		}
		if _, ok := got.Credentials[fmt.Sprintf("cred%d", i)]; !ok {
			missing = append(missing, fmt.Sprintf("credential cred%d", i))
		}
		if found, err := s.FindIdentityByCredential(ctx, fmt.Sprintf("cred%d", i), fmt.Sprintf("handle-%d", i)); err != nil || found.ID != "id-c" {
			missing = append(missing, fmt.Sprintf("index of cred%d", i))
		}
	}
	addrs := map[string]bool{}
	for _, a := range got.VerifiableAddresses {
		addrs[a.Value] = true
	}
	for i := range n {
		if !addrs[fmt.Sprintf("a%d@example.com", i)] {
			missing = append(missing, fmt.Sprintf("address a%d", i))
		}
	}
	if got.State != "inactive" {
		missing = append(missing, "state inactive")
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("lost changes: %v", missing)
	}
	if want := uint64(3*n + 1); got.Version != want {
		t.Fatalf("version %d, want %d (one per write)", got.Version, want)
	}
	if _, ok := got.Credentials["password"]; !ok {
		t.Fatal("the password credential was lost")
	}
}

// The shared (trimmed) copies of GetIdentityShared cannot be stored: they
// lack the password credential and the admin metadata.
func testSharedIdentityCopyIsNotStorable(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	id := NewIdentity("66666666-6666-4666-8666-666666666666", "s@example.com")
	id.MetadataAdmin = json.RawMessage(`{"a":1}`)
	if err := s.CreateIdentity(ctx, id); err != nil {
		t.Fatal(err)
	}
	shared, err := s.GetIdentityShared(ctx, id.ID)
	if err != nil {
		t.Fatal(err)
	}
	cp := *shared
	cp.State = "inactive"
	if err := s.UpdateIdentity(ctx, &cp); err == nil {
		t.Fatal("a trimmed shared copy was stored")
	}
	got, _ := s.GetIdentity(ctx, id.ID)
	if _, ok := got.Credentials["password"]; !ok || got.MetadataAdmin == nil || got.State != "active" {
		t.Fatalf("identity changed by a refused write: %+v", got)
	}
}

// A deactivation is visible to GetIdentityShared as soon as the write
// returns, whatever readers filled the cache meanwhile.
func testSharedIdentityNoStaleAfterDeactivation(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	for round := range 50 {
		idv := fmt.Sprintf("77777777-7777-4777-8777-%012d", round)
		if err := s.CreateIdentity(ctx, &ss.Identity{ID: idv, State: "active", Traits: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		stop := hammer(t, 4, func() error { return second(s.GetIdentityShared(ctx, idv)) })
		if _, err := s.ModifyIdentity(ctx, idv, func(id *ss.Identity) error { id.State = "inactive"; return nil }); err != nil {
			stop()
			t.Fatal(err)
		}
		got, err := s.GetIdentityShared(ctx, idv)
		stop()
		if err != nil || got.State != "inactive" {
			t.Fatalf("round %d: shared identity after deactivation: %+v %v", round, got, err)
		}
	}
}
