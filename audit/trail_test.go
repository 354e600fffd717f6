package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/event"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres/pgtest"
)

// onEngines runs f on a Badger store and on a PostgreSQL schema of its
// own (skipped without a test server, see pgtest).
func onEngines(t *testing.T, f func(t *testing.T, open func() sessionstore.Storage)) {
	t.Run("badger", func(t *testing.T) {
		var st *sessionstore.Store
		open := func() sessionstore.Storage {
			if st == nil {
				var err error
				st, err = sessionstore.Open(t.TempDir(), sessionstore.Options{NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = st.Close() })
			}
			return st
		}
		f(t, open)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn, schema := pgtest.Schema(t)
		// Every call opens another pool on the schema: another gateway.
		open := func() sessionstore.Storage {
			st, err := postgres.Open(context.Background(), dsn, postgres.Options{Schema: schema})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		}
		f(t, open)
	})
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func newTrail(t *testing.T, st sessionstore.RecordStore, opts Options) *Trail {
	t.Helper()
	tr := New(st, opts)
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	return tr
}

func closeTrail(t *testing.T, tr *Trail) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// all pages through q and returns every record, checking the pages.
func all(t *testing.T, tr *Trail, q event.Query) []event.Record {
	t.Helper()
	var out []event.Record
	for pages := 0; ; pages++ {
		recs, next, err := tr.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > max(q.PageSize, 1) && q.PageSize > 0 {
			t.Fatalf("page of %d records, page size %d", len(recs), q.PageSize)
		}
		out = append(out, recs...)
		if next == "" {
			return out
		}
		if len(recs) == 0 || next != recs[len(recs)-1].ID {
			t.Fatalf("next token %q is not the last record of the page", next)
		}
		if pages > 10000 {
			t.Fatal("paging does not end")
		}
		q.PageToken = next
	}
}

// TestRecordAndQuery: events over three hours are stored and listed
// newest first, page by page without gaps or repeats, and each filter
// (identity, type, since, until) keeps exactly its records.
func TestRecordAndQuery(t *testing.T) {
	onEngines(t, func(t *testing.T, open func() sessionstore.Storage) {
		st := open()
		base := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
		clk := &clock{t: base}
		tr := newTrail(t, st, Options{Now: clk.now})
		types := []event.Type{event.LoginSucceeded, event.LoginFailed, event.Logout}
		ids := []string{"0b8a1f36-5d4e-4f63-9f0e-8d7d0f3c1a01", "0b8a1f36-5d4e-4f63-9f0e-8d7d0f3c1a02", ""}
		const n = 90
		for i := range n {
			at := base.Add(time.Duration(i) * 2 * time.Minute) // 3 hours
			clk.set(at)
			tr.Record(context.Background(), &event.Event{Time: at, Type: types[i%3], IdentityID: ids[i%3],
				Method: "password", Reason: fmt.Sprint(i)})
		}
		closeTrail(t, tr)
		if tr.Written() != n || tr.Dropped() != 0 {
			t.Fatalf("written %d dropped %d, want %d and 0", tr.Written(), tr.Dropped(), n)
		}
		tr = newTrail(t, st, Options{Now: clk.now})

		got := all(t, tr, event.Query{PageSize: 7})
		if len(got) != n {
			t.Fatalf("listed %d records, want %d", len(got), n)
		}
		for i, r := range got {
			if want := fmt.Sprint(n - 1 - i); r.Reason != want || r.ID == "" {
				t.Fatalf("record %d: reason %q id %q, want reason %s (newest first)", i, r.Reason, r.ID, want)
			}
		}
		if len(all(t, tr, event.Query{})) != n {
			t.Fatal("the default page size does not list everything")
		}

		byID := all(t, tr, event.Query{IdentityID: ids[1], PageSize: 4})
		if len(byID) != n/3 {
			t.Fatalf("identity filter: %d records, want %d", len(byID), n/3)
		}
		for _, r := range byID {
			if r.IdentityID != ids[1] {
				t.Fatalf("identity filter let %+v through", r)
			}
		}
		if r := all(t, tr, event.Query{IdentityID: "unknown-id"}); len(r) != 0 {
			t.Fatalf("unknown identity: %d records", len(r))
		}
		if r := all(t, tr, event.Query{IdentityID: "a/b"}); len(r) != 0 {
			t.Fatalf("odd identity: %d records", len(r))
		}

		failed := all(t, tr, event.Query{Types: []event.Type{event.LoginFailed}, PageSize: 5})
		if len(failed) != n/3 || failed[0].Type != event.LoginFailed {
			t.Fatalf("type filter: %d records", len(failed))
		}
		two := all(t, tr, event.Query{Types: []event.Type{event.LoginFailed, event.Logout}, IdentityID: ids[1]})
		if len(two) != n/3 {
			t.Fatalf("types and identity: %d records, want %d", len(two), n/3)
		}

		// Records 30..59 are the second hour: since and until inclusive.
		since, until := base.Add(60*time.Minute), base.Add(118*time.Minute)
		win := all(t, tr, event.Query{Since: since, Until: until, PageSize: 8})
		if len(win) != 30 || win[0].Reason != "59" || win[29].Reason != "30" {
			t.Fatalf("since/until: %d records %v", len(win), reasons(win))
		}
		winID := all(t, tr, event.Query{Since: since, Until: until, IdentityID: ids[0]})
		if len(winID) != 10 {
			t.Fatalf("since/until with identity: %d records", len(winID))
		}

		if _, _, err := tr.Query(context.Background(), event.Query{PageToken: "nonsense"}); !errors.Is(err, event.ErrInvalidQuery) {
			t.Fatalf("bad page token: %v", err)
		}
	})
}

func reasons(rs []event.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Reason)
	}
	return out
}

// TestAggregation: a flood of gate denials and rate-limit blocks becomes
// one record per gate and reason (per rule and subject) per window, with
// the count and the last client address.
func TestAggregation(t *testing.T) {
	onEngines(t, func(t *testing.T, open func() sessionstore.Storage) {
		st := open()
		tr := newTrail(t, st, Options{})
		for i := range 5000 {
			tr.GateDenied("app", "no_session", fmt.Sprintf("192.0.2.%d", i%200))
		}
		tr.GateDenied("app", "aal2_required", "198.51.100.1")
		for range 300 {
			tr.Record(context.Background(), &event.Event{Type: event.RateLimited, Reason: "login_ip", IP: "203.0.113.9"})
		}
		tr.Record(context.Background(), &event.Event{Type: event.RateLimited, Reason: "login_ip", IP: "203.0.113.10"})
		closeTrail(t, tr)
		tr = newTrail(t, st, Options{})
		gate := all(t, tr, event.Query{Types: []event.Type{event.GateDenied}})
		slices.SortFunc(gate, func(a, b event.Record) int { return b.Count - a.Count })
		if len(gate) != 2 || gate[0].Count != 5000 || gate[0].Gate != "app" || gate[0].Reason != "no_session" ||
			gate[0].IP != "192.0.2.199" || gate[1].Count != 1 || gate[1].Reason != "aal2_required" {
			t.Fatalf("gate denials: %+v", gate)
		}
		rl := all(t, tr, event.Query{Types: []event.Type{event.RateLimited}})
		slices.SortFunc(rl, func(a, b event.Record) int { return b.Count - a.Count })
		if len(rl) != 2 || rl[0].Count != 300 || rl[0].IP != "203.0.113.9" || rl[1].Count != 1 {
			t.Fatalf("rate-limit blocks: %+v", rl)
		}
	})
}

// TestTrimMaxRecords: beyond max_records the trim deletes the oldest
// records with their index entries, and the counters follow.
func TestTrimMaxRecords(t *testing.T) {
	onEngines(t, func(t *testing.T, open func() sessionstore.Storage) {
		st := open()
		now := time.Now().UTC()
		clk := &clock{t: now}
		tr := newTrail(t, st, Options{Now: clk.now, MaxRecords: 50})
		const id = "5c0d7a11-2f1f-4c53-9d3f-3c1b0c7e8e33"
		for i := range 120 {
			at := now.Add(-3*time.Hour + time.Duration(i)*time.Minute)
			tr.Record(context.Background(), &event.Event{Time: at, Type: event.LoginSucceeded, IdentityID: id, Reason: fmt.Sprint(i)})
		}
		closeTrail(t, tr)
		tr = newTrail(t, st, Options{Now: clk.now, MaxRecords: 50})
		n, err := tr.Trim(context.Background())
		if err != nil || n != 70 {
			t.Fatalf("trim deleted %d (%v), want 70", n, err)
		}
		left := all(t, tr, event.Query{})
		if len(left) != 50 || left[0].Reason != "119" || left[49].Reason != "70" {
			t.Fatalf("after the trim: %d records %v", len(left), reasons(left))
		}
		idx := 0
		if err := st.ScanRecords(context.Background(), idNS(id), func(string, []byte) error { idx++; return nil }); err != nil {
			t.Fatal(err)
		}
		if idx != 50 {
			t.Fatalf("identity index keeps %d entries, want 50", idx)
		}
		hours, _ := tr.hours(context.Background())
		sum := 0
		for _, h := range hours {
			sum += h.count
		}
		if sum != 50 {
			t.Fatalf("counters sum to %d, want 50", sum)
		}
		if n, err := tr.Trim(context.Background()); err != nil || n != 0 {
			t.Fatalf("second trim deleted %d (%v)", n, err)
		}
	})
}

// TestTrimMaxAge: after max_age was lowered, the trim deletes the hours
// older than it.
func TestTrimMaxAge(t *testing.T) {
	onEngines(t, func(t *testing.T, open func() sessionstore.Storage) {
		st := open()
		now := time.Now().UTC()
		tr := newTrail(t, st, Options{MaxAge: 100 * time.Hour})
		for i := range 20 {
			tr.Record(context.Background(), &event.Event{Time: now.Add(-time.Duration(i) * time.Hour), Type: event.Logout})
		}
		closeTrail(t, tr)
		tr = newTrail(t, st, Options{MaxAge: 5 * time.Hour})
		n, err := tr.Trim(context.Background())
		if err != nil || n < 14 || n > 15 {
			t.Fatalf("trim deleted %d (%v), want the 14 or 15 records of the hours older than 5h", n, err)
		}
		if left := all(t, tr, event.Query{}); len(left) != 20-n {
			t.Fatalf("%d records left, want %d", len(left), 20-n)
		}
	})
}

// TestTrimLease: of several gateways on one database, one trims at a
// time; when it closes, another takes over.
func TestTrimLease(t *testing.T) {
	onEngines(t, func(t *testing.T, open func() sessionstore.Storage) {
		a := New(open(), Options{MaxRecords: 5})
		b := newTrail(t, open(), Options{MaxRecords: 5})
		for i := range 10 {
			a.Record(context.Background(), &event.Event{Type: event.Logout, Reason: fmt.Sprint(i)})
		}
		waitWritten(t, a, 10)
		if _, err := a.Trim(context.Background()); err != nil {
			t.Fatal(err)
		}
		closeTrailKeepLease(t, a)
		for i := range 10 {
			b.Record(context.Background(), &event.Event{Type: event.Logout, Reason: fmt.Sprint(i)})
		}
		// a still holds the lease (it was closed without releasing it).
		if n, err := b.Trim(context.Background()); err != nil || n != 0 {
			t.Fatalf("b trimmed %d (%v) while a holds the lease", n, err)
		}
		a.releaseLease(context.Background())
		waitWritten(t, b, 10)
		n, err := b.Trim(context.Background())
		if err != nil || n != 10 {
			t.Fatalf("b trimmed %d (%v) after a released the lease, want 10", n, err)
		}
	})
}

// closeTrailKeepLease closes tr as a crashed node would leave it: its
// records written, its lease still held.
func closeTrailKeepLease(t *testing.T, tr *Trail) {
	t.Helper()
	tr.mu.Lock()
	tr.closed = true
	tr.mu.Unlock()
	close(tr.stop)
	<-tr.done
	<-tr.trimDone
	tr.closeOnce.Do(func() {})
}

func waitWritten(t *testing.T, tr *Trail, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tr.Written() < n {
		if time.Now().After(deadline) {
			t.Fatalf("written %d, want %d", tr.Written(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// blockingStore holds every PutRecord until release is closed.
type blockingStore struct {
	sessionstore.RecordStore
	release chan struct{}
}

func (b *blockingStore) PutRecord(ctx context.Context, ns, key string, v []byte, ttl time.Duration) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.RecordStore.PutRecord(ctx, ns, key, v, ttl)
}

// TestQueueFull: while the storage hangs, Record waits at most
// QueueWait, then drops and counts; the drops are written as an
// audit.dropped record once the storage answers.
func TestQueueFull(t *testing.T) {
	onEngines(t, func(t *testing.T, open func() sessionstore.Storage) {
		st := &blockingStore{RecordStore: open(), release: make(chan struct{})}
		tr := newTrail(t, st, Options{QueueSize: 4, QueueWait: time.Millisecond})
		start := time.Now()
		for i := range 100 {
			tr.Record(context.Background(), &event.Event{Type: event.Logout, Reason: fmt.Sprint(i)})
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("100 events took %v against a hanging storage", d)
		}
		dropped := tr.Dropped()
		if dropped < 90 {
			t.Fatalf("dropped %d of 100 with a queue of 4", dropped)
		}
		close(st.release)
		closeTrail(t, tr)
		tr = newTrail(t, st, Options{})
		recs := all(t, tr, event.Query{Types: []event.Type{event.AuditDropped}})
		if len(recs) != 1 || uint64(recs[0].Count) != dropped {
			t.Fatalf("audit.dropped records %+v, want one with count %d", recs, dropped)
		}
		if kept := all(t, tr, event.Query{Types: []event.Type{event.Logout}}); uint64(len(kept))+dropped != 100 {
			t.Fatalf("kept %d and dropped %d of 100", len(kept), dropped)
		}
	})
}

// TestKeys: keys sort newest first and give their time back.
func TestKeys(t *testing.T) {
	t1 := time.Date(2025, 3, 1, 12, 0, 0, 5, time.UTC)
	t2 := t1.Add(time.Nanosecond)
	k1, k2 := newKey(t1), newKey(t2)
	if !(k2 < k1) || !validKey(k1) || !keyTime(k1).Equal(t1) {
		t.Fatalf("keys %s %s", k1, k2)
	}
	if validKey("ffffffffffffffff00000000") || validKey(k1[:23]) || validKey(k1[:23]+"g") {
		t.Fatal("validKey accepts a malformed key")
	}
	h := hourOf(t1)
	if got, ok := countKeyHour(countKey(h)); !ok || got != h || !(countKey(h+1) < countKey(h)) {
		t.Fatalf("count key of hour %d", h)
	}
}

// TestAggregationBounded: distinct gates and subjects beyond maxAggKeys a
// window fold into one record per type and reason, counted in full.
func TestAggregationBounded(t *testing.T) {
	var a aggregator
	a.init(time.Now)
	for i := range 1000 {
		a.addGate(fmt.Sprintf("host-%d.example", i), "no_session", "192.0.2.1")
		a.add(&event.Event{Type: event.RateLimited, Reason: "login_ip", IP: fmt.Sprintf("198.51.100.%d", i%250)})
	}
	items := a.flush()
	if len(items) > maxAggKeys+2 {
		t.Fatalf("%d records for one window, want at most %d", len(items), maxAggKeys+2)
	}
	counts := map[event.Type]int{}
	folded := 0
	for _, it := range items {
		counts[it.ev.Type] += it.ev.Count
		if it.ev.Gate == "" && it.ev.IP == "" || it.ev.Type == event.GateDenied && it.ev.Gate == "" {
			folded++
		}
	}
	if counts[event.GateDenied] != 1000 || counts[event.RateLimited] != 1000 || folded == 0 {
		t.Fatalf("counts %v, folded records %d", counts, folded)
	}
	if len(a.flush()) != 0 {
		t.Fatal("a flush does not start a new window")
	}
}

// TestSeveralGateways: trails of several gateways on one database write
// at once; every record is listed once and the hours' counters add up.
func TestSeveralGateways(t *testing.T) {
	onEngines(t, func(t *testing.T, open func() sessionstore.Storage) {
		trails := []*Trail{New(open(), Options{}), New(open(), Options{}), New(open(), Options{})}
		var wg sync.WaitGroup
		for n, tr := range trails {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 150 {
					tr.Record(context.Background(), &event.Event{Type: event.LoginSucceeded, Reason: fmt.Sprintf("%d-%d", n, i)})
				}
				if err := tr.Close(context.Background()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		tr := newTrail(t, open(), Options{})
		recs := all(t, tr, event.Query{PageSize: 50})
		seen := map[string]bool{}
		for _, r := range recs {
			if seen[r.Reason] {
				t.Fatalf("record %s listed twice", r.Reason)
			}
			seen[r.Reason] = true
		}
		hours, err := tr.hours(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sum := 0
		for _, h := range hours {
			sum += h.count
		}
		if len(recs) != 450 || sum != 450 {
			t.Fatalf("%d records listed, counters sum to %d, want 450", len(recs), sum)
		}
	})
}
