package audit

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"time"
)

// The namespaces of the trail (see doc.go).
const (
	recNSPrefix = "audit.rec."
	idNSPrefix  = "audit.id."
	countNS     = "audit.count"
	leaseNS     = "audit.lease"
)

// keyLen is the length of a record key: 16 hex digits of inverted time
// and 8 random ones.
const keyLen = 24

// timeKey is t as 16 hex digits that sort newest first.
func timeKey(t time.Time) string {
	n := t.UnixNano()
	if n < 0 || t.Before(time.Unix(0, 0)) {
		n = 0
	}
	return fmt.Sprintf("%016x", uint64(math.MaxInt64-n))
}

// newKey is a fresh record key for an event at t.
func newKey(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return timeKey(t) + hex.EncodeToString(b[:])
}

// validKey reports whether k has the form of a record key.
func validKey(k string) bool {
	if len(k) != keyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	_, err := strconv.ParseUint(k[:16], 16, 64)
	return err == nil && k[0] < '8'
}

// keyTime is the time a record key stands for (k must be valid).
func keyTime(k string) time.Time {
	// Valid keys start below '8', so the 16 hex digits fit an int64.
	n, _ := strconv.ParseInt(k[:16], 16, 64)
	return time.Unix(0, math.MaxInt64-n).UTC()
}

// hourOf is the hour bucket of t: whole hours since the epoch.
func hourOf(t time.Time) int64 {
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	return t.Unix() / 3600
}

func hourStart(h int64) time.Time { return time.Unix(h*3600, 0).UTC() }

// hourEnd is the last instant of hour h.
func hourEnd(h int64) time.Time { return hourStart(h + 1).Add(-time.Nanosecond) }

func recNS(h int64) string { return recNSPrefix + strconv.FormatInt(h, 10) }

// maxHour bounds the hours counter keys invert (far beyond year 100000).
const maxHour = 1 << 40

// countKey is the counter key of hour h: newest first.
func countKey(h int64) string { return fmt.Sprintf("%011x", maxHour-h) }

func countKeyHour(k string) (int64, bool) {
	n, err := strconv.ParseInt(k, 16, 64)
	if err != nil || n <= 0 || n > maxHour {
		return 0, false
	}
	return maxHour - n, true
}

// idNS is the index namespace of an identity; "" when the id cannot name
// one (ids are UUIDs; anything odd is not indexed rather than risking a
// namespace no engine accepts).
func idNS(id string) string {
	if id == "" || len(id) > 128 {
		return ""
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return ""
		}
	}
	return idNSPrefix + id
}
