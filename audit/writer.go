package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/event"
)

// maxBatch bounds the events the writer takes off the queue at once.
const maxBatch = 256

// run is the writer: it drains the queue in batches, flushes the
// aggregates once per window, and on Close drains what is left.
func (t *Trail) run() {
	defer close(t.done)
	tick := time.NewTicker(t.opts.Window)
	defer tick.Stop()
	batch := make([]item, 0, maxBatch)
	for {
		select {
		case it := <-t.queue:
			batch = t.fill(append(batch[:0], it))
			t.write(batch)
		case <-tick.C:
			t.flushAggregates()
			t.reportDrops()
		case <-t.stop:
			for len(t.queue) > 0 {
				t.write(t.fill(batch[:0]))
			}
			t.flushAggregates()
			t.reportDrops()
			return
		}
	}
}

// flushAggregates logs and stores the window's aggregated records.
func (t *Trail) flushAggregates() {
	batch := t.agg.flush()
	for i := range batch {
		t.logEvent(batch[i].key, &batch[i].ev)
	}
	t.write(batch)
}

// fill adds what the queue holds, up to maxBatch.
func (t *Trail) fill(batch []item) []item {
	for len(batch) < maxBatch {
		select {
		case it := <-t.queue:
			batch = append(batch, it)
		default:
			return batch
		}
	}
	return batch
}

// write stores batch, retrying with backoff while the storage fails;
// once Close gives up (t.abort), the rest is dropped.
func (t *Trail) write(batch []item) {
	raised := map[int64]bool{}
	backoff := 100 * time.Millisecond
	for len(batch) > 0 {
		n, err := t.put(t.abort, batch, raised)
		batch = batch[n:]
		if err == nil {
			return
		}
		if t.abort.Err() != nil {
			t.dropped.Add(uint64(len(batch)))
			t.log.Error("audit: dropped records the storage did not take before the trail closed",
				zap.Int("count", len(batch)), zap.Error(err))
			return
		}
		t.log.Warn("audit: storing records failed; retrying", zap.Int("count", len(batch)), zap.Duration("in", backoff), zap.Error(err))
		select {
		case <-time.After(backoff):
		case <-t.abort.Done():
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// put stores the records of batch: first each hour's counter (so the
// trim never undercounts; raised remembers the hours done, so a retry
// does not count twice), then the records and their identity index
// entries. It returns how many records from the front of batch it
// stored.
func (t *Trail) put(ctx context.Context, batch []item, raised map[int64]bool) (int, error) {
	now := t.opts.Now()
	byHour := map[int64]int{}
	for _, it := range batch {
		if h := hourOf(it.ev.Time); !raised[h] {
			byHour[h]++
		}
	}
	for h, n := range byHour {
		if ttl := hourEnd(h).Add(t.opts.MaxAge).Sub(now); ttl > 0 {
			if err := t.addCount(ctx, h, n, ttl); err != nil {
				return 0, err
			}
		}
		raised[h] = true
	}
	for i, it := range batch {
		if err := t.putOne(ctx, now, it); err != nil {
			return i, err
		}
		t.written.Add(1)
	}
	return len(batch), nil
}

// putOne stores one record and its index entry.
func (t *Trail) putOne(ctx context.Context, now time.Time, it item) error {
	ttl := it.ev.Time.Add(t.opts.MaxAge).Sub(now)
	if ttl <= 0 {
		return nil // older than max_age already
	}
	val, err := json.Marshal(event.Record{ID: it.key, Event: it.ev})
	if err != nil {
		return fmt.Errorf("audit: encoding a record: %w", err)
	}
	if err := t.store.PutRecord(ctx, recNS(hourOf(it.ev.Time)), it.key, val, ttl); err != nil {
		return err
	}
	if ns := idNS(it.ev.IdentityID); ns != "" {
		if err := t.store.PutRecord(ctx, ns, it.key, nil, ttl); err != nil {
			return err
		}
	}
	return nil
}

// addCount raises hour h's counter by n (negative: lowers it; at zero
// the counter goes).
func (t *Trail) addCount(ctx context.Context, h int64, n int, ttl time.Duration) error {
	return t.store.UpdateRecord(ctx, countNS, countKey(h), func(old []byte) ([]byte, time.Duration, error) {
		c, _ := strconv.Atoi(string(old))
		c += n
		if c <= 0 || ttl <= 0 {
			return nil, 0, nil
		}
		return []byte(strconv.Itoa(c)), ttl, nil
	})
}

// reportDrops writes an audit.dropped record with the drops since the
// last one, and logs them.
func (t *Trail) reportDrops() {
	d := t.dropped.Load()
	n := d - t.reported
	if n == 0 {
		return
	}
	t.reported = d
	t.log.Error("audit: events were dropped (queue full or storage failing); their log lines were written",
		zap.Uint64("dropped", n), zap.Uint64("dropped_total", d))
	count := math.MaxInt32 // a count that large is reported as this
	if n < math.MaxInt32 {
		count = int(n)
	}
	ev := event.Event{Type: event.AuditDropped, Time: t.opts.Now().UTC(), Count: count, Actor: event.ActorSystem}
	it := item{key: newKey(ev.Time), ev: ev}
	t.logEvent(it.key, &it.ev)
	t.write([]item{it})
}
