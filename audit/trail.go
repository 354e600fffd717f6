package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/event"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Defaults of Options.
const (
	DefaultMaxAge     = 90 * 24 * time.Hour
	DefaultMaxRecords = 1_000_000
	DefaultQueueSize  = 8192
	DefaultQueueWait  = 50 * time.Millisecond
	DefaultWindow     = time.Minute
	DefaultTrimEvery  = time.Minute
)

// Options configure a Trail. Zero values take the defaults.
type Options struct {
	// MaxAge is how long a record is kept. Default: 90 days.
	MaxAge time.Duration
	// MaxRecords bounds the number of records; the trim deletes the
	// oldest beyond it. Default: 1 000 000.
	MaxRecords int
	// Logger receives the trail's own warnings (drops, storage errors)
	// and, with LogEvents, one line per record. Default: none.
	Logger *zap.Logger
	// LogEvents writes every record to Logger at info level, as
	// structured fields.
	LogEvents bool
	// QueueSize bounds the events waiting for the writer. Default: 8192.
	QueueSize int
	// QueueWait is how long Record waits for room in a full queue
	// before it drops the event. Default: 50ms.
	QueueWait time.Duration
	// Window is the aggregation window of gate denials and rate-limit
	// blocks. Default: a minute.
	Window time.Duration
	// TrimEvery is how often the trim runs. Default: a minute.
	TrimEvery time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.QueueWait <= 0 {
		o.QueueWait = DefaultQueueWait
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.TrimEvery <= 0 {
		o.TrimEvery = DefaultTrimEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Trail is the audit trail: an event.Sink and an event.Log over a
// sessionstore.RecordStore. It is safe for concurrent use; Close flushes
// it.
type Trail struct {
	store sessionstore.RecordStore
	opts  Options
	log   *zap.Logger
	id    string // this trail's name in the trim lease

	// mu guards closed against the enqueues of Record: Close sets it
	// under the write lock, so once the writer drains the queue, nothing
	// is put on it anymore.
	mu     sync.RWMutex
	closed bool
	queue  chan item

	agg aggregator

	dropped  atomic.Uint64 // events lost (queue full, storage failing)
	reported uint64        // dropped already written as audit.dropped (writer only)
	written  atomic.Uint64

	stop      chan struct{} // closed by Close: drain and return
	abort     context.Context
	cancel    context.CancelFunc // aborts the writer's storage calls
	done      chan struct{}      // the writer returned
	trimDone  chan struct{}      // the trim loop returned
	closeOnce sync.Once
}

// item is a queued record.
type item struct {
	key string
	ev  event.Event
}

var (
	_ event.Sink = (*Trail)(nil)
	_ event.Log  = (*Trail)(nil)
)

// New returns a trail over store and starts its writer and trim loop.
func New(store sessionstore.RecordStore, opts Options) *Trail {
	opts.defaults()
	var b [8]byte
	_, _ = rand.Read(b[:])
	t := &Trail{store: store, opts: opts, log: opts.Logger, id: hex.EncodeToString(b[:]),
		queue: make(chan item, opts.QueueSize), stop: make(chan struct{}), done: make(chan struct{}),
		trimDone: make(chan struct{})}
	t.agg.init(opts.Now)
	t.abort, t.cancel = context.WithCancel(context.Background())
	go t.run()
	go t.trimLoop()
	return t
}

// Record logs ev and queues it for the storage; gate denials and
// rate-limit blocks are aggregated instead (see doc.go). It waits at most
// QueueWait.
func (t *Trail) Record(_ context.Context, ev *event.Event) {
	if ev == nil {
		return
	}
	e := *ev
	if e.Time.IsZero() {
		e.Time = t.opts.Now()
	}
	e.Time = e.Time.UTC()
	if e.Type == event.GateDenied || e.Type == event.RateLimited {
		t.tally(&e, func() { t.agg.add(&e) })
		return
	}
	t.enqueue(item{key: newKey(e.Time), ev: e})
}

// GateDenied counts a request a gate refused (aggregated: see doc.go).
// gate names the gate, reason why it refused (no_session,
// aal2_required, …), ip is the client's address.
func (t *Trail) GateDenied(gate, reason, ip string) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		t.late(&event.Event{Type: event.GateDenied, Time: t.opts.Now().UTC(), Gate: gate, Reason: reason, IP: ip, Count: 1})
		return
	}
	t.agg.addGate(gate, reason, ip)
}

// tally runs add, which tallies ev, unless the trail is closed. The read
// lock keeps Close (and so the final flush) from passing a tally under
// way.
func (t *Trail) tally(ev *event.Event, add func()) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		t.late(ev)
		return
	}
	add()
}

// late handles an aggregated event after Close, when no flush will come
// (a request still in flight during a reload): it is logged and counted
// as dropped.
func (t *Trail) late(ev *event.Event) {
	t.dropped.Add(1)
	t.logEvent(newKey(ev.Time), ev)
}

// enqueue logs it and puts it on the queue, waiting at most QueueWait
// for room; after Close it is written at once.
func (t *Trail) enqueue(it item) {
	t.logEvent(it.key, &it.ev)
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		t.writeLate(it)
		return
	}
	select {
	case t.queue <- it:
		t.mu.RUnlock()
		return
	default:
	}
	timer := time.NewTimer(t.opts.QueueWait)
	defer timer.Stop()
	select {
	case t.queue <- it:
	case <-timer.C:
		t.dropped.Add(1)
	}
	t.mu.RUnlock()
}

// writeLate writes an event that came after Close (a request still in
// flight during a reload), with a short deadline of its own.
func (t *Trail) writeLate(it item) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := t.put(ctx, []item{it}, map[int64]bool{}); err != nil {
		t.dropped.Add(1)
		t.log.Warn("audit: dropped an event that came after the trail was closed", zap.String("type", string(it.ev.Type)), zap.Error(err))
	}
}

// Dropped is the number of events lost so far: the queue was full, or
// the storage failed until Close gave up.
func (t *Trail) Dropped() uint64 { return t.dropped.Load() }

// Written is the number of records stored so far.
func (t *Trail) Written() uint64 { return t.written.Load() }

// Queued is the number of events waiting for the writer.
func (t *Trail) Queued() int { return len(t.queue) }

// Close stops taking events into the queue, writes what is queued and
// aggregated (and the count of drops), releases the trim lease and stops.
// When ctx ends first, what is still unwritten is dropped (and logged).
// Events recorded after Close are written one by one.
func (t *Trail) Close(ctx context.Context) error {
	var err error
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		close(t.stop)
		select {
		case <-t.done:
		case <-ctx.Done():
			t.cancel()
			<-t.done
			err = fmt.Errorf("audit: closing: %w", ctx.Err())
		}
		<-t.trimDone
		t.cancel()
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		t.releaseLease(rctx)
	})
	return err
}

// logEvent writes the Caddy log line of a record.
func (t *Trail) logEvent(id string, ev *event.Event) {
	if !t.opts.LogEvents {
		return
	}
	if ce := t.log.Check(zap.InfoLevel, string(ev.Type)); ce != nil {
		ce.Write(eventFields(id, ev)...)
	}
}

// eventFields are the log fields of a record: the event's JSON names,
// the empty ones left out.
func eventFields(id string, ev *event.Event) []zap.Field {
	f := make([]zap.Field, 0, 16)
	f = append(f, zap.String("id", id), zap.String("type", string(ev.Type)), zap.Time("time", ev.Time))
	for _, s := range []struct{ k, v string }{
		{"flow", ev.Flow}, {"method", ev.Method}, {"aal", ev.AAL}, {"identity_id", ev.IdentityID},
		{"identifier_hash", ev.Identifier}, {"session_id", ev.SessionID}, {"actor", ev.Actor},
		{"reason", ev.Reason}, {"gate", ev.Gate}, {"ip", ev.IP}, {"user_agent", ev.UserAgent},
	} {
		if s.v != "" {
			f = append(f, zap.String(s.k, s.v))
		}
	}
	if ev.Count != 0 {
		f = append(f, zap.Int("count", ev.Count))
	}
	if len(ev.Changes) > 0 {
		f = append(f, zap.Any("changes", ev.Changes))
	}
	return f
}

// errStop ends a scan early.
var errStop = errors.New("stop")
