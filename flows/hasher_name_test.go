package flows

import (
	"context"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// TestKratosHasherName: password_hasher argon2 is Kratos's name for
// argon2id (hashers.algorithm: argon2), so a Kratos config reads the same.
func TestKratosHasherName(t *testing.T) {
	st, err := sessionstore.Open(t.TempDir(), sessionstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, err := New(Config{SiteOptions: SiteOptions{PublicURL: "https://auth.example.com/"}, PasswordOptions: PasswordOptions{PasswordHasher: "argon2"}}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.hasher.Hash(context.Background(), "Gx7!qVt2#pLr9$wZk4")
	if err != nil || !strings.HasPrefix(h, "$argon2id$") {
		t.Fatalf("hash %q, %v: want an argon2id hash", h, err)
	}
}
