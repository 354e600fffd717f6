// Package courier sends Kratos's self-service emails (verification,
// recovery, login and registration codes and links) through a durable
// outbox kept in the session store.
//
// Mails are in the recipient's language: the language of the request that
// queued them, from the locale catalogue's translations (translations.go).
//
// Enqueue renders the message and stores it before returning; a background
// worker delivers due messages over SMTP (or, without SMTP, writes them to
// the log, DEV ONLY), retries failures with exponential backoff, and marks
// each message sent exactly once, even with several couriers on one store.
package courier

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Namespace is the store records namespace of the outbox.
const Namespace = "outbox"

// batchSize bounds how many due messages one scan picks.
const batchSize = 64

// Store is the part of *sessionstore.Store the courier uses.
type Store interface {
	PutRecord(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error
	GetRecord(ctx context.Context, ns, key string) ([]byte, error)
	UpdateRecord(ctx context.Context, ns, key string, fn func(old []byte) ([]byte, time.Duration, error)) error
	ScanRecords(ctx context.Context, ns string, fn func(key string, value []byte) error) error
}

// Message is one mail to send.
type Message struct {
	// To is the recipient address.
	To string
	// Template selects subject and bodies.
	Template TemplateID
	// Data is passed to the templates; Data.To defaults to To.
	Data TemplateData
	// Lang is the language of the mail (a BCP 47 tag). Empty: the
	// language of the request that queues it (locale.LanguageFrom of
	// Enqueue's context), else the default language.
	Lang string
}

// State is the delivery state of an outbox record.
type State string

// Outbox states.
const (
	StateQueued    State = "queued"    // waiting for (the next) attempt
	StateSending   State = "sending"   // claimed by a worker (lease)
	StateSent      State = "sent"      // delivered; kept RetainTTL
	StateAbandoned State = "abandoned" // MaxAttempts failures; kept RetainTTL
)

// Status describes one outbox record.
type Status struct {
	ID            string     `json:"id"`
	To            string     `json:"to"`
	Template      TemplateID `json:"template"`
	Subject       string     `json:"subject"`
	Lang          string     `json:"lang,omitempty"`
	State         State      `json:"state"`
	Attempts      int        `json:"attempts"`
	CreatedAt     time.Time  `json:"created_at"`
	NextAttemptAt time.Time  `json:"next_attempt_at"`
	SentAt        *time.Time `json:"sent_at,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
}

// record is the stored outbox entry.
type record struct {
	Status
	Text string `json:"text,omitempty"`
	HTML string `json:"html,omitempty"`
	// Sealed holds Text and HTML encrypted when body secrets are set.
	Sealed     string    `json:"sealed,omitempty"`
	LeaseOwner string    `json:"lease_owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// sender delivers one message.
type sender interface {
	send(ctx context.Context, r *record) error
}

// Courier is the outbox and its delivery worker. Safe for concurrent use.
type Courier struct {
	store    Store
	settings *Settings
	log      *zap.Logger
	sender   sender
	owner    string // lease owner id of this instance

	wake       chan struct{}
	stop       chan struct{}
	done       chan struct{}
	startOnce  sync.Once
	stopOnce   sync.Once
	started    bool
	mu         sync.Mutex
	baseCtx    context.Context
	cancelBase context.CancelFunc

	now func() time.Time
	// bodyKeys seal queued mail bodies (seal.go); none: stored in clear.
	bodyKeys []cipher.AEAD
}

// New validates cfg (see ParseConfig) and returns a courier writing to
// store's "outbox" namespace. Call Start to run the delivery worker.
// A nil logger discards logs.
func New(store Store, cfg Config, logger *zap.Logger) (*Courier, error) {
	if store == nil {
		return nil, errors.New("courier: nil store")
	}
	s, err := ParseConfig(cfg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	logger = logger.Named("courier")
	c := &Courier{
		store:    store,
		settings: s,
		log:      logger,
		owner:    randomHex(8),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		now:      time.Now,
	}
	if c.bodyKeys, err = bodyKeys(cfg.BodySecrets); err != nil {
		return nil, &ConfigError{Field: "body secrets", Err: err}
	}
	c.baseCtx, c.cancelBase = context.WithCancel(context.Background())
	if s.SMTP != nil {
		c.sender = &smtpSender{settings: s}
	} else {
		c.sender = &logSender{log: logger}
	}
	return c, nil
}

// Settings returns the parsed configuration.
func (c *Courier) Settings() *Settings { return c.settings }

// Render renders a template in the default language without queueing
// anything.
func (c *Courier) Render(id TemplateID, data TemplateData) (subject, text, html string, err error) {
	return c.RenderIn(id, c.settings.catalog.Default(), data)
}

// RenderIn renders a template in lang (the default language when it is
// not offered) without queueing anything.
func (c *Courier) RenderIn(id TemplateID, lang string, data TemplateData) (subject, text, html string, err error) {
	r, err := c.settings.renderIn(id, c.settings.languageOf(context.Background(), lang), data)
	return r.Subject, r.Text, r.HTML, err
}

// Enqueue renders msg and durably stores it in the outbox before returning
// its id; template and address errors are returned here. The worker is
// woken to send it right away.
func (c *Courier) Enqueue(ctx context.Context, msg Message) (string, error) {
	to, err := mail.ParseAddress(msg.To)
	if err != nil {
		return "", fmt.Errorf("courier: invalid recipient %q: %w", msg.To, err)
	}
	data := msg.Data
	if data.To == "" {
		data.To = to.Address
	}
	lang := c.settings.languageOf(ctx, msg.Lang)
	r, err := c.settings.renderIn(msg.Template, lang, data)
	if err != nil {
		return "", err
	}
	now := c.now().UTC()
	id := fmt.Sprintf("%016x-%s", now.UnixNano(), randomHex(8))
	rec := record{
		Status: Status{
			ID:            id,
			To:            to.Address,
			Template:      msg.Template,
			Subject:       r.Subject,
			Lang:          lang,
			State:         StateQueued,
			CreatedAt:     now,
			NextAttemptAt: now,
		},
		Text: r.Text,
		HTML: r.HTML,
	}
	if err := c.sealBody(&rec); err != nil {
		return "", fmt.Errorf("courier: seal message: %w", err)
	}
	b, err := json.Marshal(&rec)
	if err != nil {
		return "", fmt.Errorf("courier: encode message: %w", err)
	}
	if err := c.store.PutRecord(ctx, Namespace, id, b, 0); err != nil {
		return "", fmt.Errorf("courier: store message: %w", err)
	}
	c.log.Debug("mail queued", zap.String("id", id), zap.String("template", string(msg.Template)), zap.String("lang", lang), zap.String("to", to.Address))
	c.Wake()
	return id, nil
}

// Status loads an outbox record (ErrNotFound from the store when unknown or
// expired).
func (c *Courier) Status(ctx context.Context, id string) (*Status, error) {
	b, err := c.store.GetRecord(ctx, Namespace, id)
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("courier: decode %s: %w", id, err)
	}
	return &rec.Status, nil
}

// Wake nudges the worker to scan the outbox now. Never blocks.
func (c *Courier) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Start runs the delivery worker in the background. It first resumes
// whatever is queued (e.g. from before a restart). Calling Start again, or
// after Stop, does nothing.
func (c *Courier) Start() {
	c.startOnce.Do(func() {
		c.mu.Lock()
		select {
		case <-c.stop:
			c.mu.Unlock()
			return
		default:
		}
		c.started = true
		c.mu.Unlock()
		if c.settings.SMTP != nil {
			c.log.Info("courier started", zap.String("smtp", c.settings.SMTP.Redacted), zap.String("from", c.settings.FromAddr.String()))
		} else {
			c.log.Warn("courier started without SMTP: mails are only logged (DEV ONLY)")
		}
		go c.run()
	})
}

// Stop stops the worker and waits for an in-flight delivery to finish (and
// be recorded) or for ctx to end, in which case the delivery is cancelled
// and ctx's error returned. Queued messages stay in the outbox.
func (c *Courier) Stop(ctx context.Context) error {
	c.mu.Lock()
	c.stopOnce.Do(func() { close(c.stop) })
	started := c.started
	c.mu.Unlock()
	if !started {
		c.cancelBase()
		return nil
	}
	select {
	case <-c.done:
		c.cancelBase()
		return nil
	case <-ctx.Done():
		c.cancelBase()
		return ctx.Err()
	}
}

func (c *Courier) stopping() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

func (c *Courier) run() {
	defer close(c.done)
	for {
		next := c.processDue()
		if c.stopping() {
			return
		}
		wait := c.settings.PollInterval
		if !next.IsZero() {
			if d := next.Sub(c.now()); d < wait {
				wait = max(d, 0)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-c.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// processDue delivers due messages and returns when the next one will be
// due (zero: nothing pending).
func (c *Courier) processDue() time.Time {
	now := c.now()
	var due []string
	var next time.Time
	full := false
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	err := c.store.ScanRecords(c.baseCtx, Namespace, func(key string, value []byte) error {
		var rec record
		if err := json.Unmarshal(value, &rec); err != nil {
			c.log.Error("undecodable outbox record", zap.String("id", key), zap.Error(err))
			return nil
		}
		switch rec.State {
		case StateQueued:
			if rec.NextAttemptAt.After(now) {
				consider(rec.NextAttemptAt)
				return nil
			}
		case StateSending:
			if rec.LeaseUntil.After(now) {
				consider(rec.LeaseUntil)
				return nil
			}
		default:
			return nil
		}
		if len(due) >= batchSize {
			full = true
			return nil
		}
		due = append(due, key)
		return nil
	})
	if err != nil {
		if c.stopping() {
			return time.Time{}
		}
		c.log.Error("scanning outbox failed", zap.Error(err))
		return now.Add(c.settings.RetryBase)
	}
	for _, id := range due {
		if c.stopping() {
			return time.Time{}
		}
		if t := c.deliver(id); !t.IsZero() {
			consider(t)
		}
	}
	if full {
		return c.now()
	}
	return next
}

// deliver claims, sends and settles one message. It returns the time of
// its next attempt when it was rescheduled.
func (c *Courier) deliver(id string) time.Time {
	ctx := c.baseCtx
	lease := c.settings.SendTimeout + time.Minute
	var claimed record
	err := c.store.UpdateRecord(ctx, Namespace, id, func(old []byte) ([]byte, time.Duration, error) {
		claimed = record{} // fn may run again after a conflict
		if old == nil {
			return nil, 0, errSkip
		}
		var rec record
		if err := json.Unmarshal(old, &rec); err != nil {
			return nil, 0, errSkip
		}
		now := c.now()
		switch {
		case rec.State == StateQueued && !rec.NextAttemptAt.After(now):
		case rec.State == StateSending && !rec.LeaseUntil.After(now):
		default:
			return nil, 0, errSkip
		}
		rec.State = StateSending
		rec.LeaseOwner = c.owner
		rec.LeaseUntil = now.Add(lease)
		rec.Attempts++
		b, err := json.Marshal(&rec)
		if err != nil {
			return nil, 0, err
		}
		claimed = rec
		return b, 0, nil
	})
	if errors.Is(err, errSkip) {
		return time.Time{} // another worker has it, or it is gone
	}
	if err != nil {
		if !c.stopping() {
			c.log.Error("claiming outbox message failed", zap.String("id", id), zap.Error(err))
		}
		return time.Time{}
	}

	sendErr := c.openBody(&claimed)
	if sendErr == nil {
		sendCtx, cancel := context.WithTimeout(ctx, c.settings.SendTimeout)
		sendErr = c.sender.send(sendCtx, &claimed)
		cancel()
	}

	var errText string
	if sendErr != nil {
		errText = c.settings.SMTP.redact(sendErr.Error())
	}
	var final record
	settle := func(old []byte) ([]byte, time.Duration, error) {
		final = record{}
		if old == nil {
			return nil, 0, errSkip
		}
		var rec record
		if err := json.Unmarshal(old, &rec); err != nil {
			return nil, 0, errSkip
		}
		if rec.State == StateSent || rec.State == StateAbandoned {
			return nil, 0, errSkip
		}
		now := c.now().UTC()
		rec.LeaseOwner, rec.LeaseUntil = "", time.Time{}
		ttl := time.Duration(0)
		switch {
		case sendErr == nil:
			rec.State = StateSent
			rec.SentAt = &now
			rec.LastError = ""
			rec.Text, rec.HTML, rec.Sealed = "", "", "" // codes do not outlive delivery
			ttl = c.settings.RetainTTL
		case rec.Attempts >= c.settings.MaxAttempts:
			rec.State = StateAbandoned
			rec.LastError = errText
			rec.Text, rec.HTML, rec.Sealed = "", "", ""
			ttl = c.settings.RetainTTL
		default:
			rec.State = StateQueued
			rec.LastError = errText
			rec.NextAttemptAt = now.Add(c.backoff(rec.Attempts))
		}
		b, err := json.Marshal(&rec)
		if err != nil {
			return nil, 0, err
		}
		final = rec
		return b, ttl, nil
	}
	// Settling must not be cancelled by Stop: after a successful send the
	// record has to say so, or it would be sent again.
	var settleErr error
	for i := 0; i < 5; i++ {
		settleErr = c.store.UpdateRecord(context.WithoutCancel(ctx), Namespace, id, settle)
		if settleErr == nil || errors.Is(settleErr, errSkip) {
			break
		}
		time.Sleep(time.Duration(i+1) * 50 * time.Millisecond)
	}
	fields := []zap.Field{zap.String("id", id), zap.String("template", string(claimed.Template)), zap.String("to", claimed.To), zap.Int("attempt", claimed.Attempts)}
	if settleErr != nil && !errors.Is(settleErr, errSkip) {
		c.log.Error("recording delivery result failed", append(fields, zap.Bool("delivered", sendErr == nil), zap.Error(settleErr))...)
		return time.Time{}
	}
	switch final.State {
	case StateSent:
		c.log.Info("mail sent", fields...)
	case StateAbandoned:
		c.log.Error("mail abandoned after too many failed attempts", append(fields, zap.String("error", errText))...)
	case StateQueued:
		c.log.Warn("mail delivery failed, will retry", append(fields, zap.String("error", errText), zap.Time("next_attempt_at", final.NextAttemptAt))...)
		return final.NextAttemptAt
	}
	return time.Time{}
}

// backoff is the delay after the attempts-th failed attempt.
func (c *Courier) backoff(attempts int) time.Duration {
	d := c.settings.RetryBase
	for i := 1; i < attempts; i++ {
		d *= 2
		if d >= c.settings.RetryMax || d <= 0 {
			return c.settings.RetryMax
		}
	}
	return min(d, c.settings.RetryMax)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
