package courier

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// OutboxStats is the state of the outbox, for metrics.
type OutboxStats struct {
	// Pending counts the messages not delivered yet: queued (also
	// between retries) or being sent.
	Pending int
	// OldestPending is when the oldest pending message was queued (zero:
	// none pending).
	OldestPending time.Time
}

// Stats scans the outbox. The scan reads every record, sent and
// abandoned ones included (they are kept RetainTTL): a caller that polls
// it should cache the result for a while.
func (c *Courier) Stats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	err := c.store.ScanRecords(ctx, Namespace, func(_ string, value []byte) error {
		// Only the state and the age: the rest of the record (bodies,
		// addresses) is skipped without being kept.
		var rec struct {
			State     State     `json:"state"`
			CreatedAt time.Time `json:"created_at"`
		}
		if json.Unmarshal(value, &rec) != nil {
			return nil // logged by the worker, which meets it too
		}
		if rec.State != StateQueued && rec.State != StateSending {
			return nil
		}
		st.Pending++
		if st.OldestPending.IsZero() || rec.CreatedAt.Before(st.OldestPending) {
			st.OldestPending = rec.CreatedAt
		}
		return nil
	})
	if err != nil {
		return OutboxStats{}, fmt.Errorf("courier: outbox stats: %w", err)
	}
	return st, nil
}
