package session

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// wantJSONTime is t as time.Time.MarshalJSON writes it (or appendUTC's
// refusal, for years MarshalJSON refuses).
func wantJSONTime(t time.Time) (string, bool) {
	b, err := t.MarshalJSON()
	return string(b), err == nil
}

func checkAppendUTC(t *testing.T, tm time.Time) {
	t.Helper()
	want, ok := wantJSONTime(tm)
	got, gotOK := appendUTC([]byte("x"), tm)
	if gotOK != ok || (ok && string(got) != "x"+want) || (!ok && string(got) != "x") {
		t.Fatalf("%d s %d ns: appendUTC %q (%v), MarshalJSON %q (%v)", tm.Unix(), tm.Nanosecond(), got, gotOK, want, ok)
	}
	if ok && string(appendJSONTime(nil, tm)) != want {
		t.Fatalf("%v: appendJSONTime differs from MarshalJSON", tm)
	}
}

// TestAppendUTCMatchesTime: appendUTC writes what MarshalJSON writes,
// around the edges of days, months, leap years, centuries, the epoch and
// the years 0 and 9999, at every digit count of the fraction, and for a
// million random instants.
func TestAppendUTCMatchesTime(t *testing.T) {
	var edges []time.Time
	for _, y := range []int{0, 1, 4, 99, 100, 400, 1582, 1899, 1900, 1969, 1970, 1971, 1999, 2000, 2024, 2026, 2100, 2400, 9999} {
		for _, m := range []time.Month{1, 2, 3, 12} {
			for _, d := range []int{1, 28, 29, 30, 31} {
				edges = append(edges, time.Date(y, m, d, 0, 0, 0, 0, time.UTC), time.Date(y, m, d, 23, 59, 59, 999999999, time.UTC))
			}
		}
	}
	edges = append(edges, time.Unix(0, 0).UTC(), time.Unix(-1, 0).UTC(), time.Unix(-86400, 1).UTC(),
		time.Date(-1, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}.UTC())
	for ns := 1; ns < 1e9; ns *= 10 {
		edges = append(edges, time.Unix(1779012672, int64(ns)).UTC(), time.Unix(1779012672, int64(ns*3+ns/10)).UTC())
	}
	for _, tm := range edges {
		checkAppendUTC(t, tm)
	}
	r := rand.New(rand.NewPCG(1, 2))
	min, max := time.Date(-10, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(10010, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for range 1_000_000 {
		checkAppendUTC(t, time.Unix(min+r.Int64N(max-min), r.Int64N(1e9)).UTC())
	}
	// Other locations take the time package: the offset is written.
	cest := time.Date(2026, 5, 17, 10, 11, 12, 130000000, time.FixedZone("CEST", 2*3600))
	if got := string(appendJSONTime(nil, cest)); got != `"2026-05-17T10:11:12.13+02:00"` {
		t.Errorf("CEST: %s", got)
	}
}

func FuzzAppendUTC(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(1779012672), int64(130000000))
	f.Add(int64(-62135596800), int64(1))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		checkAppendUTC(t, time.Unix(sec, nsec).UTC())
	})
}

func BenchmarkAppendJSONTime(b *testing.B) {
	tm := time.Date(2026, 5, 17, 10, 11, 12, 130417000, time.UTC)
	buf := make([]byte, 0, 64)
	b.Run("appendUTC", func(b *testing.B) {
		for b.Loop() {
			buf, _ = appendUTC(buf[:0], tm)
		}
	})
	b.Run("AppendFormat", func(b *testing.B) {
		for b.Loop() {
			buf = append(buf[:0], '"')
			buf = tm.AppendFormat(buf, time.RFC3339Nano)
			buf = append(buf, '"')
		}
	})
}

// TestJSONPlainMatchesEncodingJSON: the bytes jsonPlain marks are those
// encoding/json writes unchanged, alone in a string.
func TestJSONPlainMatchesEncodingJSON(t *testing.T) {
	for c := range 256 {
		s := string([]byte{byte(c)})
		enc, _ := json.Marshal(s)
		if plain := string(enc) == `"`+s+`"`; plain != jsonPlain[c] {
			t.Errorf("byte %#x: encoding/json copies it %v, jsonPlain %v", c, plain, jsonPlain[c])
		}
	}
}
