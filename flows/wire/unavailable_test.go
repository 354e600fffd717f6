package wire_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

func TestStoreError(t *testing.T) {
	down := fmt.Errorf("sessionstore: get session: %w", fmt.Errorf("%w: dial tcp: connection refused", sessionstore.ErrUnavailable))
	if !wire.IsUnavailable(down) || !errors.Is(down, sessionstore.ErrUnavailable) {
		t.Fatal("a wrapped sessionstore.ErrUnavailable is not recognised")
	}
	if e := wire.StoreError(down, "unable to store the flow"); e.Code != http.StatusServiceUnavailable || e.RetryAfter() <= 0 {
		t.Errorf("StoreError(unavailable) = %d, retry after %d; want 503 with Retry-After", e.Code, e.RetryAfter())
	}
	for _, err := range []error{nil, errors.New("disk full"), sessionstore.ErrNotFound, fmt.Errorf("x: %w", sessionstore.ErrConflict)} {
		if wire.IsUnavailable(err) {
			t.Errorf("IsUnavailable(%v) = true", err)
		}
		if e := wire.StoreError(err, "unable to store the flow"); e.Code != http.StatusInternalServerError || e.Reason != "unable to store the flow" {
			t.Errorf("StoreError(%v) = %d %q, want 500 with the reason", err, e.Code, e.Reason)
		}
	}
}
