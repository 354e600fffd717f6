package flow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/event"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Abuse limits. Kratos OSS has none (its maintainers leave it to the
// proxy, which is us). State lives in the store so a restart does not reset
// it. A subject over its limit is blocked for a backoff window that doubles
// with each consecutive block up to a cap, never for good: an attacker can
// slow a known user down, not lock them out.
//
// A limit of N admits N attempts per window: the attempt that would exceed
// N starts the block and is refused, and so is every later one.
// Attempts are reserved before they are evaluated (reserve), in one store
// transaction per bucket, so concurrent attempts cannot all pass a check
// made before any of them is counted; a success gives its attempt back.
// Limit state is read and written with a context detached from the
// client's: a client that goes away or half-closes its connection cannot
// make its attempt go uncounted. A store error refuses the attempt (503):
// the limits fail closed.

// RateLimits configures the limits (on by default; Kratos has none); zero
// fields take the defaults below. The Caddy app decodes it from its JSON
// (rate_limits), hence the tags.
type RateLimits struct {
	// Disabled turns every limit off. Default: false.
	Disabled bool `json:"off,omitempty"`
	// LoginFailuresPerIdentifier is the number of failed password logins
	// for one identifier per 15 minutes before a backoff block. Default:
	// 10.
	LoginFailuresPerIdentifier int `json:"login_failures_per_identifier,omitempty"`
	// LoginFailuresPerIP is the number of failed password logins from one
	// client IP per 15 minutes. Default: 50.
	LoginFailuresPerIP int `json:"login_failures_per_ip,omitempty"`
	// CodeFailuresPerIP is the number of wrong one-time codes from one
	// client IP per 15 minutes (on top of the per-flow limit). Default: 30.
	CodeFailuresPerIP int `json:"code_failures_per_ip,omitempty"`
	// SendsPerAddress is the number of recovery, verification and code
	// mails to one address per hour. Default: 10.
	SendsPerAddress int `json:"sends_per_address,omitempty"`
	// SendsPerIP is the number of such mails requested from one client IP
	// per hour. Default: 50.
	SendsPerIP int `json:"sends_per_ip,omitempty"`
	// RegistrationsPerIP is the number of sign-up attempts (successful or
	// not, duplicates included) from one client IP per hour. Default: 30.
	RegistrationsPerIP int `json:"registrations_per_ip,omitempty"`
	// FlowsPerIP is the number of self-service flows created for one
	// client IP per 10 minutes (each flow is stored for its lifespan).
	// Default: 300.
	FlowsPerIP int `json:"flows_per_ip,omitempty"`
}

type limitRule struct {
	name     string
	max      int
	window   time.Duration
	block    time.Duration
	maxBlock time.Duration
}

func (k *Kernel) rules() map[string]limitRule {
	l := k.cfg.RateLimits
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
		"flow_ip":   {"flow_ip", def(l.FlowsPerIP, 300), 10 * time.Minute, time.Minute, 10 * time.Minute},
	}
}

type bucket struct {
	Count        int       `json:"c"`
	WindowStart  time.Time `json:"w"`
	BlockedUntil time.Time `json:"b,omitzero"`
	Blocks       int       `json:"n,omitempty"`
}

const limitNS = "rl"

// limitOpTimeout bounds each read or write of limit state.
const limitOpTimeout = 5 * time.Second

// limitCtx is ctx without its cancellation (values kept), bounded by
// limitOpTimeout: counting must not depend on the client staying.
func limitCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), limitOpTimeout)
}

// limitKey hashes the subject: identifiers and IPs are not kept in clear.
func limitKey(rule, subject string) string {
	h := sha256.Sum256([]byte(rule + "\x00" + subject))
	return rule + "/" + hex.EncodeToString(h[:16])
}

// clientIP is the request's client address: Config.ClientIP (Caddy's
// client_ip with trusted proxies) or the connection's remote host.
func (k *Kernel) clientIP(r *http.Request) string {
	if k.cfg.ClientIP != nil {
		if ip := k.cfg.ClientIP(r); ip != "" {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// LimitIP is the subject of the per-IP limits: the client's IPv4 address
// (IPv4-mapped IPv6 included), or the /64 of its IPv6 address, since one
// client usually holds a whole /64 and could rotate through it.
func (k *Kernel) LimitIP(r *http.Request) string {
	return ipSubject(k.clientIP(r))
}

func ipSubject(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// blockedError refuses an attempt while its subject is blocked.
type blockedError struct{ d time.Duration }

func (b *blockedError) Error() string { return fmt.Sprintf("rate limit: blocked for %s", b.d) }

func (k *Kernel) decodeBucket(old []byte) bucket {
	var bk bucket
	if old != nil {
		_ = json.Unmarshal(old, &bk)
	}
	return bk
}

func (lr limitRule) ttl() time.Duration { return lr.window + lr.maxBlock + time.Hour }

// Blocked returns how long subject stays blocked under rule (0: not). A
// store error is returned, and callers refuse the attempt.
func (k *Kernel) Blocked(ctx context.Context, rule, subject string) (time.Duration, error) {
	if k.cfg.RateLimits.Disabled || subject == "" {
		return 0, nil
	}
	lctx, cancel := limitCtx(ctx)
	defer cancel()
	b, err := k.store.GetRecord(lctx, limitNS, limitKey(rule, subject))
	if errors.Is(err, sessionstore.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("rate limit %s: %w", rule, err)
	}
	bk := k.decodeBucket(b)
	if d := bk.BlockedUntil.Sub(k.now()); d > 0 {
		k.limited(rule, subject)
		return d, nil
	}
	return 0, nil
}

// limited records an attempt a limit refused: the rule, and the subject —
// the client address of the per-IP rules, a hash of anything else.
func (k *Kernel) limited(rule, subject string) {
	ev := event.Event{Type: event.RateLimited, Reason: rule}
	if strings.HasSuffix(rule, "_ip") {
		ev.IP = subject
	} else {
		ev.Identifier = k.cfg.Events.HashIdentifier(subject)
	}
	k.cfg.Events.Emit(nil, ev)
}

// Hit counts one attempt of subject under rule in one store transaction:
// while the subject is blocked the attempt is refused (*blockedError); an
// attempt that would be number max+1 of the window starts a block and is
// refused too, so at most max attempts are evaluated per window however
// many arrive at once. Otherwise the attempt is counted and admitted.
func (k *Kernel) Hit(ctx context.Context, rule, subject string) error {
	if k.cfg.RateLimits.Disabled || subject == "" {
		return nil
	}
	lr := k.rules()[rule]
	now := k.now()
	var refused time.Duration
	err := k.store.UpdateRecord(ctx, limitNS, limitKey(rule, subject), func(old []byte) ([]byte, time.Duration, error) {
		bk := k.decodeBucket(old)
		refused = 0
		if d := bk.BlockedUntil.Sub(now); d > 0 {
			refused = d
			return nil, 0, errRefused
		}
		if now.Sub(bk.WindowStart) > lr.window {
			bk.Count, bk.WindowStart = 0, now
			// A quiet window after the last block forgives earlier blocks.
			if now.Sub(bk.BlockedUntil) > lr.window {
				bk.Blocks = 0
			}
		}
		if bk.Count >= lr.max {
			bk.Blocks++
			d := time.Duration(float64(lr.block) * math.Pow(2, float64(bk.Blocks-1)))
			if d > lr.maxBlock || d <= 0 {
				d = lr.maxBlock
			}
			bk.BlockedUntil = now.Add(d)
			bk.Count, bk.WindowStart = 0, now
			refused = d
		} else {
			bk.Count++
		}
		b, err := json.Marshal(bk)
		return b, lr.ttl(), err
	})
	if refused > 0 && (err == nil || errors.Is(err, errRefused)) {
		return &blockedError{d: refused}
	}
	if err != nil {
		return fmt.Errorf("rate limit %s: %w", rule, err)
	}
	return nil
}

// errRefused aborts hit's transaction without writing.
var errRefused = errors.New("refused")

// unhit gives back one attempt counted by hit (a success, or an attempt
// that was not evaluated).
func (k *Kernel) unhit(ctx context.Context, rule, subject string) error {
	if k.cfg.RateLimits.Disabled || subject == "" {
		return nil
	}
	lr := k.rules()[rule]
	return k.store.UpdateRecord(ctx, limitNS, limitKey(rule, subject), func(old []byte) ([]byte, time.Duration, error) {
		if old == nil {
			return nil, 0, nil
		}
		bk := k.decodeBucket(old)
		if bk.Count > 0 {
			bk.Count--
		}
		b, err := json.Marshal(bk)
		return b, lr.ttl(), err
	})
}

// forgive clears subject's bucket (a successful login).
func (k *Kernel) forgive(ctx context.Context, rule, subject string) {
	if k.cfg.RateLimits.Disabled || subject == "" {
		return
	}
	lctx, cancel := limitCtx(ctx)
	defer cancel()
	if err := k.store.DeleteRecord(lctx, limitNS, limitKey(rule, subject)); err != nil {
		k.logger.Warn("rate limit forgive", zap.Error(err))
	}
}

// Reservation is the attempts reserve counted for one request.
type Reservation struct {
	k     *Kernel
	ctx   context.Context
	taken []reserved
}

type reserved struct {
	rule, subject string
}

// Reserve counts one attempt against each (rule, subject) pair before the
// attempt is evaluated. It returns a 429 error while a pair is blocked, a
// 503 error when the limit state cannot be read or written (fail closed);
// either way nothing stays counted. Release gives the attempts back when
// the attempt succeeds or is not evaluated; a failure keeps them.
func (k *Kernel) Reserve(ctx context.Context, pairs ...string) (*Reservation, *wire.Error) {
	rv := &Reservation{k: k, ctx: context.WithoutCancel(ctx)}
	if k.cfg.RateLimits.Disabled {
		return rv, nil
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		rule, subject := pairs[i], pairs[i+1]
		if subject == "" {
			continue
		}
		lctx, cancel := limitCtx(ctx)
		err := k.Hit(lctx, rule, subject)
		cancel()
		if err != nil {
			rv.Release()
			var be *blockedError
			if errors.As(err, &be) {
				k.limited(rule, subject)
				return nil, errTooMany(be.d)
			}
			k.logger.Error("rate limit state unavailable; refusing the attempt", zap.Error(err))
			return nil, LimitsUnavailable()
		}
		rv.taken = append(rv.taken, reserved{rule: rule, subject: subject})
	}
	return rv, nil
}

// Release gives back every attempt still held.
func (rv *Reservation) Release() {
	for _, t := range rv.taken {
		lctx, cancel := limitCtx(rv.ctx)
		if err := rv.k.unhit(lctx, t.rule, t.subject); err != nil {
			rv.k.logger.Warn("rate limit release", zap.Error(err))
		}
		cancel()
	}
	rv.taken = nil
}

// Forgive clears the bucket of rule (a success wipes earlier failures of
// that subject) and drops it from the reservation.
func (rv *Reservation) Forgive(rule string) {
	kept := rv.taken[:0]
	for _, t := range rv.taken {
		if t.rule == rule {
			rv.k.forgive(rv.ctx, t.rule, t.subject)
			continue
		}
		kept = append(kept, t)
	}
	rv.taken = kept
}

// Refuse answers a request reserve refused: 429 through tooMany (form
// posts see the message on their flow), anything else as a plain error.
func (k *Kernel) Refuse(w http.ResponseWriter, r *http.Request, sub *Submission, ee *wire.Error) {
	if ee.Code == http.StatusTooManyRequests {
		k.TooMany(w, r, sub, time.Duration(ee.RetryAfter())*time.Second)
		return
	}
	wire.WriteError(w, r, ee)
}

// LimitsUnavailable refuses an attempt whose limits could not be
// checked: 503 with Retry-After, never an unchecked attempt.
func LimitsUnavailable() *wire.Error {
	ee := wire.NewError(http.StatusServiceUnavailable, "", "", "The abuse limits could not be checked; the attempt was not evaluated. Please try again in a few seconds.")
	ee.WithRetryAfter(5)
	return ee
}

// TooMany answers a rate-limited submit: 429 in Kratos's error shape with
// Retry-After; a browser form post gets the message on its flow instead.
func (k *Kernel) TooMany(w http.ResponseWriter, r *http.Request, sub *Submission, retry time.Duration) {
	secs := int(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	reason := fmt.Sprintf("Too many attempts. Please try again in %d seconds.", secs)
	if sub != nil && sub.ToUI {
		sub.Flow.UI.Messages = []node.Text{node.TextReason(4000001, reason)}
		k.Render(w, r, sub, http.StatusTooManyRequests)
		return
	}
	wire.WriteError(w, r, errTooMany(retry))
}

// errTooMany is the 429 error for a block of retry.
func errTooMany(retry time.Duration) *wire.Error {
	secs := int(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	ee := wire.NewError(http.StatusTooManyRequests, "", "", fmt.Sprintf("Too many attempts. Please try again in %d seconds.", secs))
	ee.WithRetryAfter(secs)
	return ee.WithDetail("retry_after_seconds", secs)
}

// LimitSend counts a mail to address requested by the client against the
// per-address and per-IP mail limits; it returns the refusal (429 or 503)
// when the mail must not be sent. Every Mailer.Send of a code or link goes
// through it.
func (k *Kernel) LimitSend(r *http.Request, address string) *wire.Error {
	_, ee := k.Reserve(r.Context(), "send_addr", identity.NormalizeIdentifier(address), "send_ip", k.LimitIP(r))
	return ee
}

// Guessing limits for one-time second factors (TOTP and recovery codes):
// wrong codes count against the client IP (rule code_ip) and the identity
// (rule login_id, subject "aal2:<identity id>"), so a stolen password does
// not allow an online search of the 6-digit code space.

// ReserveSecondFactor counts a second-factor guess against the client and
// the identity before the code is checked: a 429 (or 503, fail closed)
// error when refused.
func (k *Kernel) ReserveSecondFactor(r *http.Request, identityID string) (*Reservation, *wire.Error) {
	return k.Reserve(r.Context(), "code_ip", k.LimitIP(r), "login_id", "aal2:"+identityID)
}

// SecondFactorPassed gives a correct code's attempt back and clears the
// identity's count.
func (rv *Reservation) SecondFactorPassed() {
	rv.Forgive("login_id")
	rv.Release()
}
