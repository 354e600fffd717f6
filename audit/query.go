package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/caddy-kratos/caddy-kratos/flows/event"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Page sizes of Query.
const (
	defaultPageSize = 250
	maxPageSize     = 1000
)

// Query returns one page of the records q selects, newest first (see
// event.Log). The page token is the id of the last record of the
// previous page. Without an identity it walks the hours that have
// records, newest first, and skips those outside since and until; with
// one, that identity's index.
func (t *Trail) Query(ctx context.Context, q event.Query) ([]event.Record, string, error) {
	size := q.PageSize
	if size <= 0 {
		size = defaultPageSize
	}
	size = min(size, maxPageSize)
	if q.PageToken != "" && !validKey(q.PageToken) {
		return nil, "", fmt.Errorf("%w: page_token is not a token of this list", event.ErrInvalidQuery)
	}
	s := &scan{q: q, size: size, out: make([]event.Record, 0, min(size+1, 64))}
	if !q.Until.IsZero() {
		s.from = timeKey(q.Until)
	}
	var err error
	if q.IdentityID != "" {
		err = t.queryIdentity(ctx, s)
	} else {
		err = t.queryAll(ctx, s)
	}
	if err != nil && !errors.Is(err, errStop) {
		return nil, "", fmt.Errorf("audit: query: %w", err)
	}
	next := ""
	if len(s.out) > size {
		s.out = s.out[:size]
		next = s.out[size-1].ID
	}
	return s.out, next, nil
}

// scan is a query in progress.
type scan struct {
	q    event.Query
	size int
	from string // keys below are newer than until
	out  []event.Record
}

// skip reports whether key is before the page (newer than until, or not
// after the page token), and stop whether it is past since.
func (s *scan) skip(key string) (skip, stop bool) {
	if !validKey(key) {
		return true, false
	}
	if key < s.from || (s.q.PageToken != "" && key <= s.q.PageToken) {
		return true, false
	}
	if !s.q.Since.IsZero() && keyTime(key).Before(s.q.Since) {
		return true, true
	}
	return false, false
}

// take decodes a record and keeps it when its type is asked for; errStop
// once the page (and one more, to tell whether there is a next page) is
// full.
func (s *scan) take(value []byte) error {
	var rec event.Record
	if err := json.Unmarshal(value, &rec); err != nil {
		return nil // not a record of ours: skipped, never fatal
	}
	if len(s.q.Types) > 0 && !slices.Contains(s.q.Types, rec.Type) {
		return nil
	}
	s.out = append(s.out, rec)
	if len(s.out) > s.size {
		return errStop
	}
	return nil
}

// queryAll walks the hours that have records, newest first.
func (t *Trail) queryAll(ctx context.Context, s *scan) error {
	hours, err := t.hours(ctx)
	if err != nil {
		return err
	}
	for _, hc := range hours {
		h := hc.hour
		if !s.q.Since.IsZero() && hourEnd(h).Before(s.q.Since) {
			return nil // this hour and every older one
		}
		if !s.q.Until.IsZero() && hourStart(h).After(s.q.Until) {
			continue
		}
		if s.q.PageToken != "" && hourStart(h).After(keyTime(s.q.PageToken)) {
			continue
		}
		err := t.store.ScanRecords(ctx, recNS(h), func(key string, value []byte) error {
			skip, stop := s.skip(key)
			if stop {
				return errStop
			}
			if skip {
				return nil
			}
			return s.take(value)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// queryIdentity walks an identity's index and loads its records.
func (t *Trail) queryIdentity(ctx context.Context, s *scan) error {
	ns := idNS(s.q.IdentityID)
	if ns == "" {
		return nil // no such id is ever indexed
	}
	return t.store.ScanRecords(ctx, ns, func(key string, _ []byte) error {
		skip, stop := s.skip(key)
		if stop {
			return errStop
		}
		if skip {
			return nil
		}
		v, err := t.store.GetRecord(ctx, recNS(hourOf(keyTime(key))), key)
		if errors.Is(err, sessionstore.ErrNotFound) {
			return nil // trimmed; the index entry goes with the next trim or its TTL
		}
		if err != nil {
			return err
		}
		return s.take(v)
	})
}

// hourCount is an hour with records and its counter.
type hourCount struct {
	hour  int64
	count int
}

// hours lists the hours that have records, newest first, with their
// counters.
func (t *Trail) hours(ctx context.Context) ([]hourCount, error) {
	var out []hourCount
	err := t.store.ScanRecords(ctx, countNS, func(key string, value []byte) error {
		h, ok := countKeyHour(key)
		if !ok {
			return nil
		}
		n, _ := strconv.Atoi(string(value))
		out = append(out, hourCount{hour: h, count: n})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
