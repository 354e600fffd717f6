package sessionstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
)

func TestParseTableMappings(t *testing.T) {
	const smaps = `55d0c0a00000-55d0c0a21000 r--p 00000000 fd:01 4063266                    /usr/bin/caddy
Size:                132 kB
Rss:                 132 kB
7f3a10000000-7f3a10400000 rw-s 00000000 fd:01 812                        /data/kratos/000012.sst
Size:               4096 kB
KernelPageSize:        4 kB
Rss:                1024 kB
Pss:                1024 kB
VmFlags: rd wr sh mr mw me ms sd
7f3a10400000-7f3a10800000 rw-s 00000000 fd:01 813                        /data/kratos/000013.sst (deleted)
Rss:                4096 kB
7f3a10800000-7f3a11800000 rw-s 00000000 fd:01 814                        /data/kratos/000001.vlog
Rss:                  12 kB
7f3a11800000-7f3a11c00000 rw-s 00000000 fd:01 815                        /data/other/000002.sst
Rss:                4096 kB
7f3a11c00000-7f3a11c02000 rw-s 00001000 fd:01 816                        /data/kratos/my table 7.sst
Rss:                   8 kB
7f3a12000000-7f3a12400000 rw-p 00000000 00:00 0
Rss:                2048 kB
7ffd5a9e0000-7ffd5aa01000 rw-p 00000000 00:00 0                          [stack]
Rss:                  16 kB
`
	got, err := parseTableMappings(strings.NewReader(smaps), "/data/kratos")
	if err != nil {
		t.Fatal(err)
	}
	want := []tableMapping{
		{start: 0x7f3a10000000, end: 0x7f3a10400000, path: "/data/kratos/000012.sst", rss: 1024 << 10},
		{start: 0x7f3a11c00000, end: 0x7f3a11c02000, offset: 0x1000, path: "/data/kratos/my table 7.sst", rss: 8 << 10},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("mappings:\n got %+v\nwant %+v", got, want)
	}

	if _, err := parseTableMappings(strings.NewReader("7f3a10000000-7f3a10400000 rw-s 00000000 fd:01 812 /d/1.sst\nRss: lots kB\n"), "/d"); err == nil {
		t.Fatal("an unreadable Rss was accepted")
	}
}

// fillTables writes n random values of size bytes straight into the
// store's Badger database (random, so Snappy leaves them as large as they
// are) and returns a function that checks one of them.
func fillTables(t *testing.T, s *Store, n, size int) func(i int, got []byte) error {
	t.Helper()
	value := func(i int) []byte {
		b := make([]byte, size)
		r := rand.New(rand.NewChaCha8([32]byte{byte(i), byte(i >> 8), byte(i >> 16)}))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return b
	}
	wb := s.db.NewWriteBatch()
	for i := range n {
		if err := wb.Set([]byte(fmt.Sprintf("rec/trim/%08d", i)), value(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	return func(i int, got []byte) error {
		if !bytes.Equal(got, value(i)) {
			return fmt.Errorf("value %d changed", i)
		}
		return nil
	}
}

// tableStore writes a closed store of n random values of size bytes
// (fillTables) and returns its directory and the values' check.
func tableStore(t *testing.T, n, size int) (string, func(int, []byte) error) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true, ResidentTableLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	check := fillTables(t, s, n, size)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, check
}

// readAll reads every value written by fillTables and checks it.
func readAll(t *testing.T, s *Store, n int, check func(int, []byte) error) {
	t.Helper()
	err := s.db.View(func(txn *badger.Txn) error {
		for i := range n {
			item, err := txn.Get([]byte(fmt.Sprintf("rec/trim/%08d", i)))
			if err != nil {
				return fmt.Errorf("value %d: %w", i, err)
			}
			if err := item.Value(func(v []byte) error { return check(i, v) }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func residentTables(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	defer f.Close()
	maps, err := parseTableMappings(f, dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, m := range maps {
		n += m.rss
	}
	return n
}

// TestTableDataLen: the data blocks end where Badger's own reading of the
// footer says the index starts.
func TestTableDataLen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true, ResidentTableLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	fillTables(t, s, 20_000, 512)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{NoSync: true, ResidentTableLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tables := s.db.Tables()
	if len(tables) == 0 {
		t.Fatal("no tables")
	}
	for _, ti := range tables {
		path := filepath.Join(dir, fmt.Sprintf("%06d.sst", ti.ID))
		data, err := tableDataLen(path)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// What follows the data: the index, its length (4), the
		// checksum (a few bytes) and its length (4).
		if rest := st.Size() - int64(data) - int64(ti.IndexSz); data == 0 || rest < 8 || rest > 8+64 { // #nosec G115 -- a file size
			t.Fatalf("table %d: %d bytes, data %d, index %d: %d bytes of footer", ti.ID, st.Size(), data, ti.IndexSz, rest)
		}
	}

	short := filepath.Join(t.TempDir(), "1.sst")
	if err := os.WriteFile(short, []byte{0, 0, 1, 0}, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tableDataLen(short); err == nil {
		t.Fatal("a table whose checksum length runs past its start was accepted")
	}
}

// TestTableTrimBoundsResidentPages: after every value of a ~40 MiB store
// has been read, the table mappings are resident far over the limit; one
// trim brings them under it, and every value still reads back unchanged.
func TestTableTrimBoundsResidentPages(t *testing.T) {
	if !tableTrimSupported {
		t.Skip("no table trimming on this platform")
	}
	const n, size, limit = 40_000, 1024, 8 << 20
	dir, check := tableStore(t, n, size)
	// Without the store's own trimmer (-1), so that only this test's
	// trims run.
	s, err := Open(dir, Options{NoSync: true, ResidentTableLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.trim != nil {
		t.Fatal("a trimmer with storage_resident_limit off")
	}
	tr, err := newTableTrimmer(dir, limit, nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, s, n, check)
	before := residentTables(t, tr.dir)
	if before < 3*limit {
		t.Fatalf("only %d bytes of tables resident after reading them all; the test needs > %d", before, 3*limit)
	}
	resident, trimmed, err := tr.trimOnce()
	if err != nil {
		t.Fatal(err)
	}
	if tr.disabled.Load() {
		t.Skip("the kernel has no MADV_PAGEOUT")
	}
	after := residentTables(t, tr.dir)
	t.Logf("resident before %d, seen by the trimmer %d, paged out %d, after %d", before, resident, trimmed, after)
	if trimmed <= 0 || after > limit {
		t.Fatalf("after trimming: %d bytes resident (limit %d), %d paged out", after, limit, trimmed)
	}
	readAll(t, s, n, check)

	// Under the limit, nothing is done.
	tr.limit = 1 << 40
	if _, trimmed, err := tr.trimOnce(); err != nil || trimmed != 0 {
		t.Fatalf("under the limit: trimmed %d, %v", trimmed, err)
	}
}

// TestStoreTrimsInBackground: a store opened with a limit keeps its
// tables' resident pages near it while they are read over and over (its
// own goroutine, every defaultTrimInterval); with the limit off they stay.
func TestStoreTrimsInBackground(t *testing.T) {
	if !tableTrimSupported {
		t.Skip("no table trimming on this platform")
	}
	const n, size, limit = 40_000, 1024, 8 << 20
	dir, check := tableStore(t, n, size)
	s, err := Open(dir, Options{NoSync: true, ResidentTableLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	abs := s.trim.dir
	for range 3 {
		readAll(t, s, n, check)
	}
	// The last pass may have mapped up to 40 MiB since the last tick, and
	// a compaction may have written tables since the last measure: the
	// bound holds at the latest at the next measure (trimFullEvery).
	deadline := time.Now().Add(trimFullEvery + 15*time.Second)
	for residentTables(t, abs) > limit && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if s.trim.disabled.Load() {
		t.Skip("the kernel has no MADV_PAGEOUT")
	}
	if got := residentTables(t, abs); got > limit || s.trim.trimmed.Load() == 0 {
		t.Fatalf("%d bytes of tables resident (limit %d), %d paged out in the background", got, limit, s.trim.trimmed.Load())
	}
}

// TestPageoutKeepsMemory is why the trimmer uses MADV_PAGEOUT: a range it
// found in smaps may be anonymous memory by the time it calls madvise, and
// paging it out must not change what it holds (MADV_DONTNEED would zero
// it).
func TestPageoutKeepsMemory(t *testing.T) {
	if !tableTrimSupported {
		t.Skip("no table trimming on this platform")
	}
	const n = 1 << 20
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(b)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	heap := bytes.Repeat([]byte("kratos"), n/6)
	for _, r := range [][]byte{b, heap} {
		addr := uintptr(unsafe.Pointer(&r[0]))
		pg := uintptr(os.Getpagesize())
		lo := (addr + pg - 1) &^ (pg - 1)
		hi := (addr + uintptr(len(r))) &^ (pg - 1)
		if err := madvisePageout(lo, hi-lo); err != nil && err != errPageoutUnsupported {
			t.Fatal(err)
		}
	}
	for i := range b {
		if b[i] != byte(i*7+3) {
			t.Fatalf("anonymous mapping changed at %d", i)
		}
	}
	if !bytes.Equal(heap, bytes.Repeat([]byte("kratos"), n/6)) {
		t.Fatal("heap memory changed")
	}
}

// fakeTable writes a file shaped like a Badger table: data, an index of
// 100 bytes, its length, a checksum of 4 bytes and its length.
func fakeTable(t *testing.T, path string, data int) {
	t.Helper()
	b := make([]byte, data+100)
	b = binary.BigEndian.AppendUint32(b, 100)
	b = append(b, 1, 2, 3, 4)
	b = binary.BigEndian.AppendUint32(b, 4)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTableTrimTick: between measures of the mappings, the tables'
// resident bytes are estimated from the growth of the file-backed RSS;
// over the limit every known table's data blocks are paged out at once;
// the mappings are measured again after trimFullEvery.
func TestTableTrimTick(t *testing.T) {
	dir := t.TempDir()
	pg := os.Getpagesize()
	fakeTable(t, filepath.Join(dir, "000001.sst"), 3*pg+10)
	fakeTable(t, filepath.Join(dir, "000002.sst"), 5*pg)
	smaps := fmt.Sprintf(`7f0000000000-7f0000010000 rw-s 00000000 fd:01 1 %[1]s/000001.sst
Rss: 8 kB
7f0000100000-7f0000110000 rw-s 00000000 fd:01 2 %[1]s/000002.sst
Rss: 12 kB
`, dir)
	var file int64 = 100 << 20
	var measured int
	type call struct{ addr, n uintptr }
	var calls []call
	tr := &tableTrimmer{
		dir: dir, limit: 32 << 20,
		smaps: func() (io.ReadCloser, error) {
			measured++
			return io.NopCloser(strings.NewReader(smaps)), nil
		},
		fileRSS: func() (int64, error) { return file, nil },
		pageout: func(addr, n uintptr) error { calls = append(calls, call{addr, n}); return nil },
	}
	var c trimClock
	t0 := time.Unix(1_700_000_000, 0)
	if !tr.tick(&c, t0) || measured != 1 || len(calls) != 0 {
		t.Fatalf("first tick: measured %d times, %d pageouts", measured, len(calls))
	}
	if len(tr.known) != 2 || c.tables != 20<<10 {
		t.Fatalf("after measuring: known %+v, tables %d", tr.known, c.tables)
	}
	file -= 10 << 20 // another mapping went away: the growth counts from here
	if tr.tick(&c, t0.Add(100*time.Millisecond)) || measured != 1 || len(calls) != 0 {
		t.Fatalf("after a fall: measured %d, %d pageouts", measured, len(calls))
	}
	file += 30 << 20 // 20 KiB + 30 MiB: under the limit
	if tr.tick(&c, t0.Add(200*time.Millisecond)) || measured != 1 || len(calls) != 0 {
		t.Fatalf("under the limit: measured %d, %d pageouts", measured, len(calls))
	}
	file += 2 << 20 // over, within trimMeasureGap of the measure: every known range paged out
	if !tr.tick(&c, t0.Add(300*time.Millisecond)) || measured != 1 {
		t.Fatalf("over the limit: not paged out (measured %d)", measured)
	}
	// Both tables' data blocks, largest resident first, whole pages only.
	want := []call{{0x7f0000100000, uintptr(5 * pg)}, {0x7f0000000000, uintptr(3 * pg)}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("pageouts %v, want %v", calls, want)
	}
	if tr.tick(&c, t0.Add(400*time.Millisecond)) || len(calls) != 2 {
		t.Fatalf("paged out again without growth (%d)", len(calls))
	}
	file += 40 << 20 // over again, a second after the measure: measured again
	if !tr.tick(&c, t0.Add(trimMeasureGap)) || measured != 2 {
		t.Fatalf("over the limit after trimMeasureGap: not measured (%d)", measured)
	}
	if tr.tick(&c, t0.Add(2*trimMeasureGap)) || measured != 2 {
		t.Fatalf("measured again without growth (%d)", measured)
	}
	// Tables whose indexes alone exceed the limit: a measure trims what
	// it can, and the next waits for new growth, not for trimMeasureGap.
	smaps = strings.Replace(smaps, "Rss: 12 kB", "Rss: 40000 kB", 1)
	file += 40 << 20
	if !tr.tick(&c, t0.Add(3*trimMeasureGap)) || measured != 3 || c.tables != 0 {
		t.Fatalf("over the limit: measured %d, tables %d", measured, c.tables)
	}
	if tr.tick(&c, t0.Add(4*trimMeasureGap)) || measured != 3 {
		t.Fatalf("measured again without growth after trimming (%d)", measured)
	}
	if !tr.tick(&c, t0.Add(3*trimMeasureGap+trimFullEvery)) || measured != 4 {
		t.Fatalf("not measured after trimFullEvery (%d)", measured)
	}
	if got, err := readStatm(); tableTrimSupported && (err != nil || got <= 0) {
		t.Fatalf("readStatm: %d, %v", got, err)
	}
}

// FuzzParseTableMappings: any smaps text gives an error or mappings of
// dir's .sst files with a sane range, never a panic.
func FuzzParseTableMappings(f *testing.F) {
	f.Add("7f3a10000000-7f3a10400000 rw-s 00000000 fd:01 812 /d/000012.sst\nRss: 1024 kB\n")
	f.Add("7f3a10000000-7f3a10400000 rw-s 00001000 fd:01 812 /d/a b.sst\nSize: 4 kB\nRss:  8 kB\n7f3a10400000-7f3a10800000 r--p 0 0:0 0\n")
	f.Add("zz-7f rw-s 0 0 0 /d/1.sst\nRss: x kB\n")
	f.Fuzz(func(t *testing.T, smaps string) {
		maps, err := parseTableMappings(strings.NewReader(smaps), "/d")
		if err != nil {
			return
		}
		for _, m := range maps {
			if m.end <= m.start || filepath.Dir(m.path) != "/d" || !strings.HasSuffix(m.path, ".sst") {
				t.Fatalf("mapping %+v", m)
			}
		}
	})
}
