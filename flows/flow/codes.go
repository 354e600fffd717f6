package flow

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// NewCode returns a uniformly random 6-digit code.
func NewCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic("flows: crypto/rand failed: " + err.Error())
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// CodeMAC keys a code to its flow with a server secret, so the stored
// value reveals nothing even to someone who can read the store (6 digits
// would fall to an offline search of a plain hash). The key comes from the
// cipher secrets when they are set, else from the cookie secrets.
func (k *Kernel) CodeMAC(flowID, code string) string {
	m := hmac.New(sha256.New, k.codeKey)
	m.Write([]byte("code\x00" + flowID + "\x00" + code))
	return hex.EncodeToString(m.Sum(nil))
}

// Challenge is the pending code of a recovery/verification/login flow,
// kept in flow.Internal["challenge"].
type Challenge struct {
	MAC        string    `json:"mac"`
	Address    string    `json:"address"`
	IdentityID string    `json:"identity_id,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
	Attempts   int       `json:"attempts"`
}

// Challenge is the flow's pending code, nil when there is none.
func (f *Flow) Challenge() *Challenge {
	raw, ok := f.Internal["challenge"]
	if !ok {
		return nil
	}
	var c Challenge
	b, _ := json.Marshal(raw)
	if json.Unmarshal(b, &c) != nil || c.MAC == "" {
		return nil
	}
	return &c
}

// SetChallenge stores c as the flow's pending code (nil removes it).
func (f *Flow) SetChallenge(c *Challenge) {
	if f.Internal == nil {
		f.Internal = map[string]any{}
	}
	if c == nil {
		delete(f.Internal, "challenge")
		return
	}
	var m map[string]any
	b, _ := json.Marshal(c)
	_ = json.Unmarshal(b, &m)
	f.Internal["challenge"] = m
}

// checkCode verifies code against the flow's challenge in constant time;
// it counts the attempt and reports whether the flow may still be tried.
func (k *Kernel) checkCode(f *Flow, code string) (ok bool, c *Challenge) {
	c = f.Challenge()
	if c == nil {
		return false, nil
	}
	c.Attempts++
	if c.Attempts > k.cfg.CodeMaxSubmissions || k.now().After(c.ExpiresAt) {
		f.SetChallenge(c)
		return false, c
	}
	want := c.MAC
	got := k.CodeMAC(f.ID, code)
	ok = hmac.Equal([]byte(want), []byte(got))
	if ok {
		f.SetChallenge(nil)
	} else {
		f.SetChallenge(c)
	}
	return ok, c
}

// ConsumeCode checks code against the stored flow atomically (a store
// transaction), so of concurrent submissions of one correct code exactly
// one succeeds. f is refreshed from the store.
func (k *Kernel) ConsumeCode(r *http.Request, f *Flow, code string) (ok bool, c *Challenge, err error) {
	ctx := r.Context()
	// The guess is counted before it is checked; only a wrong code keeps
	// the count.
	rv, lerr := k.Reserve(ctx, "code_ip", k.LimitIP(r))
	if lerr != nil {
		return false, nil, lerr
	}
	defer func() {
		if err != nil || ok {
			rv.Release()
		}
	}()
	err = k.store.UpdateRecord(ctx, FlowNS, f.ID, func(old []byte) ([]byte, time.Duration, error) {
		if old == nil {
			return nil, 0, ErrNotFound
		}
		var sf Flow
		if err := json.Unmarshal(old, &sf); err != nil {
			return nil, 0, err
		}
		if sf.State == "passed_challenge" {
			// Someone already succeeded: leave the flow as it is.
			ok, c = false, nil
			*f = sf
			return old, time.Until(sf.ExpiresAt) + flowGrace, nil
		}
		ok, c = k.checkCode(&sf, code)
		if ok {
			// Part of the same transaction, so a concurrent loser can
			// never save its stale copy over the winner's state.
			sf.State = "passed_challenge"
		}
		sf.UpdatedAt = k.now().UTC()
		b, err := json.Marshal(&sf)
		if err != nil {
			return nil, 0, err
		}
		*f = sf
		return b, time.Until(sf.ExpiresAt) + flowGrace, nil
	})
	return ok, c, err
}

// TakeInternal removes f.Internal[key] from the stored flow in one store
// transaction and returns it: of concurrent submits exactly one gets the
// value. It is also removed from f (so saving f cannot bring it back). ""
// when there is none.
func (k *Kernel) TakeInternal(ctx context.Context, f *Flow, key string) (string, error) {
	var raw string
	err := k.store.UpdateRecord(ctx, FlowNS, f.ID, func(old []byte) ([]byte, time.Duration, error) {
		raw = ""
		if old == nil {
			return nil, 0, ErrNotFound
		}
		var sf Flow
		if err := json.Unmarshal(old, &sf); err != nil {
			return nil, 0, err
		}
		ttl := time.Until(sf.ExpiresAt) + flowGrace
		if ttl <= 0 {
			ttl = flowGrace
		}
		raw, _ = sf.Internal[key].(string)
		if raw == "" {
			return old, ttl, nil
		}
		delete(sf.Internal, key)
		b, err := json.Marshal(&sf)
		return b, ttl, err
	})
	delete(f.Internal, key)
	return raw, err
}

// AsError returns err as a Kratos error when it is one (a 429 or 503 from
// the limiter), or an internal error.
func AsError(err error, internal string) *wire.Error {
	var ee *wire.Error
	if errors.As(err, &ee) {
		return ee
	}
	return wire.Internal(internal)
}
