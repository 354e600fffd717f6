package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/event"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// leaseKey is the trim lease's record: the id of the trail that holds it.
const leaseKey = "trim"

var errLeaseHeld = errors.New("audit: the trim lease is held by another node")

// trimLoop runs Trim every TrimEvery until Close.
func (t *Trail) trimLoop() {
	defer close(t.trimDone)
	tick := time.NewTicker(t.opts.TrimEvery)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			if _, err := t.Trim(t.abort); err != nil && t.abort.Err() == nil {
				t.log.Warn("audit: trimming the trail failed", zap.Error(err))
			}
		}
	}
}

// Trim enforces MaxRecords and MaxAge once, if this trail holds the trim
// lease (taking it when it is free): with several gateways on one
// database, one trims at a time. It deletes whole hours older than
// MaxAge (records kept past a lowered max_age; TTLs expire the rest),
// then, while the hours' counters sum to more than MaxRecords, the
// oldest records. It returns how many records it deleted.
func (t *Trail) Trim(ctx context.Context) (int, error) {
	if err := t.takeLease(ctx); errors.Is(err, errLeaseHeld) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	hours, err := t.hours(ctx)
	if err != nil {
		return 0, err
	}
	slices.Reverse(hours) // oldest first
	now := t.opts.Now()
	cutoff := now.Add(-t.opts.MaxAge)
	current := hourOf(now)
	total := 0
	for _, hc := range hours {
		total += hc.count
	}
	surplus := total - t.opts.MaxRecords
	deleted := 0
	for _, hc := range hours {
		expired := hourEnd(hc.hour).Before(cutoff)
		if !expired && surplus <= 0 {
			break
		}
		live, err := t.countLive(ctx, hc.hour)
		if err != nil {
			return deleted, err
		}
		// The counter may overcount (records expired by their TTL within
		// the hour, a write that failed after its count): go by what is
		// there. The current hour is still being written; its counter
		// is left to the writers.
		drift := 0
		if hc.hour < current {
			drift = hc.count - live
		}
		surplus -= hc.count - live
		k := min(max(surplus, 0), live)
		if expired {
			k = live
		}
		n, err := t.deleteOldest(ctx, hc.hour, live-k)
		deleted += n
		surplus -= n
		if d := drift + n; d != 0 {
			if aerr := t.addCount(ctx, hc.hour, -d, hourEnd(hc.hour).Add(t.opts.MaxAge).Sub(now)); err == nil {
				err = aerr
			}
		}
		if err != nil {
			return deleted, err
		}
	}
	if deleted > 0 {
		t.log.Info("audit: trimmed the trail", zap.Int("deleted", deleted), zap.Int("max_records", t.opts.MaxRecords),
			zap.Duration("max_age", t.opts.MaxAge))
	}
	return deleted, nil
}

// countLive counts the records of hour h.
func (t *Trail) countLive(ctx context.Context, h int64) (int, error) {
	n := 0
	err := t.store.ScanRecords(ctx, recNS(h), func(string, []byte) error {
		n++
		return nil
	})
	return n, err
}

// deleteOldest deletes the records of hour h after the newest keep ones
// (keys sort newest first), with their index entries. TakeRecord makes
// each deletion count once when another node deletes too.
func (t *Trail) deleteOldest(ctx context.Context, h int64, keep int) (int, error) {
	ns := recNS(h)
	i, n := 0, 0
	err := t.store.ScanRecords(ctx, ns, func(key string, _ []byte) error {
		i++
		if i <= keep {
			return nil
		}
		v, err := t.store.TakeRecord(ctx, ns, key)
		if errors.Is(err, sessionstore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		n++
		var rec event.Record
		if json.Unmarshal(v, &rec) == nil {
			if ins := idNS(rec.IdentityID); ins != "" {
				if err := t.store.DeleteRecord(ctx, ins, key); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("audit: trimming hour %d: %w", h, err)
	}
	return n, nil
}

// takeLease takes or renews the trim lease; errLeaseHeld when another
// trail holds it. The lease expires by itself if its holder stops
// without releasing it.
func (t *Trail) takeLease(ctx context.Context) error {
	ttl := 3 * t.opts.TrimEvery
	return t.store.UpdateRecord(ctx, leaseNS, leaseKey, func(old []byte) ([]byte, time.Duration, error) {
		if old != nil && string(old) != t.id {
			return nil, 0, errLeaseHeld
		}
		return []byte(t.id), ttl, nil
	})
}

// releaseLease gives the lease up if this trail holds it.
func (t *Trail) releaseLease(ctx context.Context) {
	err := t.store.UpdateRecord(ctx, leaseNS, leaseKey, func(old []byte) ([]byte, time.Duration, error) {
		if string(old) != t.id {
			return nil, 0, errLeaseHeld
		}
		return nil, 0, nil
	})
	if err != nil && !errors.Is(err, errLeaseHeld) {
		t.log.Debug("audit: releasing the trim lease", zap.Error(err))
	}
}
