package storetest

import (
	ss "github.com/caddy-kratos/caddy-kratos/sessionstore"

	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

func testRecordsBasic(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	if _, err := s.GetRecord(ctx, "flow", "f1"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("absent: %v", err)
	}
	if err := s.PutRecord(ctx, "flow", "f1", []byte("one"), 0); err != nil {
		t.Fatal(err)
	}
	v, err := s.GetRecord(ctx, "flow", "f1")
	if err != nil || string(v) != "one" {
		t.Fatalf("get: %q %v", v, err)
	}
	if err := s.PutRecord(ctx, "flow", "empty", nil, 0); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetRecord(ctx, "flow", "empty"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty record: %v %v", v, err)
	}
	if err := s.DeleteRecord(ctx, "flow", "f1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRecord(ctx, "flow", "f1"); err != nil {
		t.Fatalf("delete absent: %v", err)
	}
	if _, err := s.GetRecord(ctx, "flow", "f1"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.PutRecord(ctx, "a/b", "k", nil, 0); err == nil {
		t.Fatal("namespace with '/' accepted")
	}
	if err := s.PutRecord(ctx, "flow", "neg", []byte("x"), -time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRecord(ctx, "flow", "neg"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("negative ttl: %v", err)
	}
}

func testRecordTTL(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	if err := s.PutRecord(ctx, "code", "long", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(ctx, "code", "forever", []byte("x"), 0); err != nil {
		t.Fatal(err)
	}

	// One real expiry (engines may round the deadline up to a second).
	if err := s.PutRecord(ctx, "code", "short", []byte("x"), time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRecord(ctx, "code", "short"); err != nil {
		t.Fatalf("short-lived record gone too early: %v", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := s.GetRecord(ctx, "code", "short")
		if errors.Is(err, ss.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("record did not expire: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var keys []string
	if err := s.ScanRecords(ctx, "code", func(k string, _ []byte) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[forever long]" {
		t.Fatalf("scan after expiry: %v", keys)
	}
}

func testScanRecords(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	for _, kv := range [][2]string{{"b", "2"}, {"a", "1"}, {"c/x", "3"}} {
		if err := s.PutRecord(ctx, "ns", kv[0], []byte(kv[1]), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutRecord(ctx, "ns2", "a", []byte("other"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRecord(ctx, "n", "s", []byte("other"), 0); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := s.ScanRecords(ctx, "ns", func(k string, v []byte) error {
		got = append(got, k+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[a=1 b=2 c/x=3]" {
		t.Fatalf("scan: %v", got)
	}
	stop := errors.New("stop")
	n := 0
	err = s.ScanRecords(ctx, "ns", func(string, []byte) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("stop: n=%d %v", n, err)
	}
	// Deleting from inside the callback is allowed.
	err = s.ScanRecords(ctx, "ns", func(k string, _ []byte) error { return s.DeleteRecord(ctx, "ns", k) })
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	_ = s.ScanRecords(ctx, "ns", func(string, []byte) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d records left", n)
	}
}

func testTakeRecordConcurrent(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	if err := s.PutRecord(ctx, "code", "once", []byte("prize"), time.Minute); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var mu sync.Mutex
	taken, misses := 0, 0
	together(n, func(int) {
		v, err := s.TakeRecord(ctx, "code", "once")
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil && string(v) == "prize":
			taken++
		case errors.Is(err, ss.ErrNotFound):
			misses++
		default:
			t.Errorf("unexpected: %q %v", v, err)
		}
	})
	if taken != 1 || misses != n-1 {
		t.Fatalf("wins=%d misses=%d", taken, misses)
	}
	if _, err := s.GetRecord(ctx, "code", "once"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("record still there: %v", err)
	}
}

func testUpdateRecordConcurrent(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	const n = 20
	together(n, func(int) {
		err := s.UpdateRecord(ctx, "ctr", "c", func(old []byte) ([]byte, time.Duration, error) {
			v := 0
			if old != nil {
				var err error
				if v, err = strconv.Atoi(string(old)); err != nil {
					return nil, 0, err
				}
			}
			return []byte(strconv.Itoa(v + 1)), time.Hour, nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	v, err := s.GetRecord(ctx, "ctr", "c")
	if err != nil || string(v) != strconv.Itoa(n) {
		t.Fatalf("counter %q %v, want %d", v, err, n)
	}

	// nil deletes; errors abort and are matchable.
	boom := errors.New("boom")
	if err := s.UpdateRecord(ctx, "ctr", "c", func([]byte) ([]byte, time.Duration, error) { return []byte("x"), 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("fn error: %v", err)
	}
	if v, _ := s.GetRecord(ctx, "ctr", "c"); string(v) != strconv.Itoa(n) {
		t.Fatalf("aborted update changed value to %q", v)
	}
	if err := s.UpdateRecord(ctx, "ctr", "c", func([]byte) ([]byte, time.Duration, error) { return nil, 0, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRecord(ctx, "ctr", "c"); !errors.Is(err, ss.ErrNotFound) {
		t.Fatalf("nil value did not delete: %v", err)
	}
	var sawNil bool
	_ = s.UpdateRecord(ctx, "ctr", "c", func(old []byte) ([]byte, time.Duration, error) {
		sawNil = old == nil
		return nil, 0, nil
	})
	if !sawNil {
		t.Fatal("absent record not passed as nil")
	}
}

func testSecretAgreement(t *testing.T, e Engine) {
	s := e.Open(t)
	ctx := ctxOf(t)
	const n = 10
	results := make([][]byte, n)
	together(n, func(i int) {
		v, err := s.Secret(ctx, "cookie", func() ([]byte, error) { return []byte(fmt.Sprintf("secret-%d", i)), nil })
		if err != nil {
			t.Error(err)
		}
		results[i] = v
	})
	for i := 1; i < n; i++ {
		if !bytes.Equal(results[i], results[0]) {
			t.Fatalf("secrets disagree: %q vs %q", results[i], results[0])
		}
	}
	again, err := s.Secret(ctx, "cookie", func() ([]byte, error) { return nil, errors.New("must not be called") })
	if err != nil || !bytes.Equal(again, results[0]) {
		t.Fatalf("existing secret: %q %v", again, err)
	}
	genErr := errors.New("no entropy")
	if _, err := s.Secret(ctx, "other", func() ([]byte, error) { return nil, genErr }); !errors.Is(err, genErr) {
		t.Fatalf("gen error: %v", err)
	}
}
