package flows

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Abuse limits. Kratos OSS has none (its maintainers leave it to the
// proxy, which is us). State lives in the store so a restart does not reset
// it. A subject over its limit is blocked for a backoff window that doubles
// with each consecutive block up to a cap, never for good: an attacker can
// slow a known user down, not lock them out.

// RateLimits configures the limits; zero fields take the defaults below.
type RateLimits struct {
	// Disabled turns every limit off.
	Disabled bool
	// LoginFailuresPerIdentifier: failed password logins for one identifier
	// per 15 minutes. Default: 10.
	LoginFailuresPerIdentifier int
	// LoginFailuresPerIP: failed password logins from one client IP per 15
	// minutes. Default: 50.
	LoginFailuresPerIP int
	// CodeFailuresPerIP: wrong one-time codes from one client IP per 15
	// minutes (on top of the per-flow limit). Default: 30.
	CodeFailuresPerIP int
	// SendsPerAddress: recovery, verification and code mails to one address
	// per hour. Default: 10.
	SendsPerAddress int
	// SendsPerIP: such mails requested from one client IP per hour.
	// Default: 50.
	SendsPerIP int
	// RegistrationsPerIP: sign-ups from one client IP per hour. Default: 30.
	RegistrationsPerIP int
}

type limitRule struct {
	name     string
	max      int
	window   time.Duration
	block    time.Duration
	maxBlock time.Duration
}

func (e *Engine) rules() map[string]limitRule {
	l := e.cfg.RateLimits
	def := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	return map[string]limitRule{
		"login_id":  {"login_id", def(l.LoginFailuresPerIdentifier, 10), 15 * time.Minute, time.Minute, 15 * time.Minute},
		"login_ip":  {"login_ip", def(l.LoginFailuresPerIP, 50), 15 * time.Minute, time.Minute, 15 * time.Minute},
		"code_ip":   {"code_ip", def(l.CodeFailuresPerIP, 30), 15 * time.Minute, time.Minute, 15 * time.Minute},
		"send_addr": {"send_addr", def(l.SendsPerAddress, 10), time.Hour, 5 * time.Minute, time.Hour},
		"send_ip":   {"send_ip", def(l.SendsPerIP, 50), time.Hour, 5 * time.Minute, time.Hour},
		"reg_ip":    {"reg_ip", def(l.RegistrationsPerIP, 30), time.Hour, 5 * time.Minute, time.Hour},
	}
}

type bucket struct {
	Count        int       `json:"c"`
	WindowStart  time.Time `json:"w"`
	BlockedUntil time.Time `json:"b,omitzero"`
	Blocks       int       `json:"n,omitempty"`
}

const limitNS = "rl"

// limitKey hashes the subject: identifiers and IPs are not kept in clear.
func limitKey(rule, subject string) string {
	h := sha256.Sum256([]byte(rule + "\x00" + subject))
	return rule + "/" + hex.EncodeToString(h[:16])
}

// clientIP is the request's client address: Config.ClientIP (Caddy's
// client_ip with trusted proxies) or the connection's remote host.
func (e *Engine) clientIP(r *http.Request) string {
	if e.cfg.ClientIP != nil {
		if ip := e.cfg.ClientIP(r); ip != "" {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// blocked returns how long subject stays blocked under rule (0: not).
func (e *Engine) blocked(ctx context.Context, rule, subject string) time.Duration {
	if e.cfg.RateLimits.Disabled || subject == "" {
		return 0
	}
	b, err := e.store.GetRecord(ctx, limitNS, limitKey(rule, subject))
	if err != nil {
		return 0
	}
	var bk bucket
	if json.Unmarshal(b, &bk) != nil {
		return 0
	}
	if d := bk.BlockedUntil.Sub(e.now()); d > 0 {
		return d
	}
	return 0
}

// hit counts one event for subject and returns the block it caused (0:
// none).
func (e *Engine) hit(ctx context.Context, rule, subject string) time.Duration {
	if e.cfg.RateLimits.Disabled || subject == "" {
		return 0
	}
	lr := e.rules()[rule]
	now := e.now()
	var blockedFor time.Duration
	err := e.store.UpdateRecord(ctx, limitNS, limitKey(rule, subject), func(old []byte) ([]byte, time.Duration, error) {
		var bk bucket
		if old != nil {
			_ = json.Unmarshal(old, &bk)
		}
		blockedFor = 0
		if now.Sub(bk.WindowStart) > lr.window {
			bk.Count, bk.WindowStart = 0, now
			// A quiet window after the last block forgives earlier blocks.
			if now.Sub(bk.BlockedUntil) > lr.window {
				bk.Blocks = 0
			}
		}
		bk.Count++
		if bk.Count > lr.max {
			bk.Blocks++
			d := time.Duration(float64(lr.block) * math.Pow(2, float64(bk.Blocks-1)))
			if d > lr.maxBlock || d <= 0 {
				d = lr.maxBlock
			}
			bk.BlockedUntil = now.Add(d)
			bk.Count, bk.WindowStart = 0, now
			blockedFor = d
		}
		b, err := json.Marshal(bk)
		ttl := lr.window + lr.maxBlock + time.Hour
		return b, ttl, err
	})
	if err != nil {
		e.logger.Warn("rate limit update", zapErr(err))
	}
	return blockedFor
}

// forgive clears subject's bucket (a successful login).
func (e *Engine) forgive(ctx context.Context, rule, subject string) {
	if e.cfg.RateLimits.Disabled || subject == "" {
		return
	}
	_ = e.store.DeleteRecord(ctx, limitNS, limitKey(rule, subject))
}

// tooMany answers a rate-limited submit: 429 in Kratos's error shape with
// Retry-After; a browser form post gets the message on its flow instead.
func (e *Engine) tooMany(w http.ResponseWriter, r *http.Request, sub *submission, retry time.Duration) {
	secs := int(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	reason := fmt.Sprintf("Too many attempts. Please try again in %d seconds.", secs)
	if sub != nil && sub.toUI {
		sub.f.UI.Messages = []Text{textReason(4000001, reason)}
		e.renderFlowError(w, r, sub, http.StatusTooManyRequests)
		return
	}
	writeError(w, r, errTooMany(retry))
}

// errTooMany is the 429 error for a block of retry.
func errTooMany(retry time.Duration) *Error {
	secs := int(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	ee := newError(http.StatusTooManyRequests, "", "", fmt.Sprintf("Too many attempts. Please try again in %d seconds.", secs))
	ee.retryAfter = secs
	return ee.withDetail("retry_after_seconds", secs)
}

// firstBlock returns the longest active block among (rule, subject) pairs.
func (e *Engine) firstBlock(ctx context.Context, pairs ...string) time.Duration {
	var longest time.Duration
	for i := 0; i+1 < len(pairs); i += 2 {
		if d := e.blocked(ctx, pairs[i], pairs[i+1]); d > longest {
			longest = d
		}
	}
	return longest
}

// limitSend checks and counts a mail sent to address on the client's
// request; it returns the block when the limit is reached.
func (e *Engine) limitSend(r *http.Request, address string) time.Duration {
	ip := e.clientIP(r)
	if d := e.firstBlock(r.Context(), "send_addr", address, "send_ip", ip); d > 0 {
		return d
	}
	d1 := e.hit(r.Context(), "send_addr", address)
	d2 := e.hit(r.Context(), "send_ip", ip)
	return max(d1, d2)
}
