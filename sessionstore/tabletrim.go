package sessionstore

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Badger v4 reads its table files through memory mappings and has no
// option to read them otherwise, so every page of a table the process has
// read stays in its RSS until the kernel needs the memory: after serving
// each of a million sessions once, the whole store on disk (~450 MB).
// tableTrimmer bounds that: when the resident pages of the store's table
// mappings exceed a limit, it asks the kernel to page out their data
// blocks, largest mapping first (MADV_PAGEOUT; the tables' indexes and
// bloom filters, read on every lookup, are left alone). A page read again
// afterwards is read from the file again; the caches in front of the store
// serve the hot sessions and identities, and Badger's block cache the hot
// blocks, so what is paged out is what was read once.
//
// Why MADV_PAGEOUT and not MADV_DONTNEED, which would keep the pages in
// the page cache: the trimmer finds the mappings in /proc/self/smaps, and
// between reading it and the madvise call Badger may unmap a table it
// compacted away and the address range may be mapped again as anonymous
// memory (the Go runtime's, the compact cache's rings). MADV_DONTNEED
// would zero such memory; MADV_PAGEOUT is a hint that never changes what
// memory holds, whatever the range is by then.

// DefaultResidentTableLimit is Options.ResidentTableLimit's default.
const DefaultResidentTableLimit = 32 << 20

// defaultTrimInterval is how often the process's file-backed RSS is read
// (/proc/self/statm: a few counters, no page walk); trimFullEvery is how
// often the table mappings are measured one by one (/proc/self/smaps
// walks every page table: ~2–17 ms at a million sessions).
const (
	defaultTrimInterval = 250 * time.Millisecond
	trimFullEvery       = 30 * time.Second
	// trimMeasureGap spaces the measures a burst of reads asks for.
	trimMeasureGap = time.Second
)

// tableMapping is one mapping of a table file, from /proc/self/smaps.
type tableMapping struct {
	start, end uint64 // address range
	offset     uint64 // file offset of start
	path       string
	rss        int64 // resident bytes
}

// parseTableMappings reads smaps (the format of /proc/<pid>/smaps) and
// returns the mappings of Badger table files (*.sst) directly in dir.
func parseTableMappings(r io.Reader, dir string) ([]tableMapping, error) {
	var out []tableMapping
	var cur *tableMapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m, ok := parseMappingHeader(line); ok {
			cur = nil
			if filepath.Dir(m.path) == dir && strings.HasSuffix(m.path, ".sst") {
				out = append(out, m)
				cur = &out[len(out)-1]
			}
			continue
		}
		if cur == nil {
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("smaps: Rss of %s: %w", cur.path, err)
			}
			cur.rss = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("smaps: %w", err)
	}
	return out, nil
}

// parseMappingHeader reads a mapping's first line in smaps:
// "start-end perms offset dev inode path". A path that is not a plain
// file (none, [heap], "... (deleted)") gives an empty path.
func parseMappingHeader(line string) (tableMapping, bool) {
	f := strings.Fields(line)
	if len(f) < 5 || strings.HasSuffix(f[0], ":") {
		return tableMapping{}, false
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return tableMapping{}, false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	off, err3 := strconv.ParseUint(f[2], 16, 64)
	if err1 != nil || err2 != nil || err3 != nil || end <= start {
		return tableMapping{}, false
	}
	m := tableMapping{start: start, end: end, offset: off}
	// The path is the rest of the line after the inode; it may contain
	// spaces. A deleted file's mapping is left alone.
	if len(f) >= 6 && strings.HasPrefix(f[5], "/") {
		i := strings.Index(line, f[5])
		p := line[i:]
		if !strings.HasSuffix(p, " (deleted)") {
			m.path = p
		}
	}
	return m, true
}

// tableDataLen returns how many bytes at the start of a Badger table file
// are data blocks: what precedes the table's index, which Badger's footer
// locates (…index, index length u32, checksum, checksum length u32; big
// endian, as badger/v4/table reads it).
func tableDataLen(path string) (uint64, error) {
	f, err := os.Open(path) // #nosec G304 -- a table of the store's own directory, as /proc/self/smaps names it
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	var b [4]byte
	pos := size - 4
	if pos < 0 {
		return 0, fmt.Errorf("table %s: %d bytes, too short", path, size)
	}
	if _, err := f.ReadAt(b[:], pos); err != nil {
		return 0, fmt.Errorf("table %s: checksum length: %w", path, err)
	}
	pos -= int64(binary.BigEndian.Uint32(b[:])) + 4
	if pos < 0 {
		return 0, fmt.Errorf("table %s: checksum length out of range", path)
	}
	if _, err := f.ReadAt(b[:], pos); err != nil {
		return 0, fmt.Errorf("table %s: index length: %w", path, err)
	}
	pos -= int64(binary.BigEndian.Uint32(b[:]))
	if pos < 0 {
		return 0, fmt.Errorf("table %s: index length out of range", path)
	}
	return uint64(pos), nil // #nosec G115 -- pos >= 0, checked above
}

// tableTrimmer keeps the resident pages of dir's table mappings under
// limit (see the comment at the top of this file).
type tableTrimmer struct {
	dir   string
	limit int64
	logf  func(level, format string, args ...any)
	// pageout asks the kernel to page out [addr, addr+n); the platform's
	// (madvisePageout) outside tests.
	pageout func(addr, n uintptr) error
	// smaps opens the mappings' description; /proc/self/smaps outside
	// tests.
	smaps func() (io.ReadCloser, error)
	// fileRSS is the process's file-backed resident bytes (readStatm
	// outside tests): it grows as tables are read, so a check of the
	// mappings is due when it has grown by a quarter of the limit.
	fileRSS func() (int64, error)

	// known are the data ranges of the table mappings measured last
	// (run's goroutine only).
	known []dataRange
	// trimmed counts the bytes of mappings paged out, over the store's
	// life (for logs and tests).
	trimmed  atomic.Int64
	disabled atomic.Bool
}

// newTableTrimmer returns the trimmer of the store in dir.
func newTableTrimmer(dir string, limit int64, logf func(level, format string, args ...any)) (*tableTrimmer, error) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs) // smaps names the resolved path
	}
	if err != nil {
		return nil, err
	}
	return &tableTrimmer{dir: abs, limit: limit, logf: logf, pageout: madvisePageout, smaps: openSmaps, fileRSS: readStatm}, nil
}

// errPageoutUnsupported is returned by pageout where the kernel has no
// MADV_PAGEOUT (Linux before 5.4) or the platform no madvise.
var errPageoutUnsupported = errors.New("MADV_PAGEOUT is not supported here")

// pageMask rounds an address down to its page.
var pageMask = uint64(os.Getpagesize()) - 1 // #nosec G115 -- a page size

// dataRange is the data blocks of one table mapping, whole pages.
type dataRange struct {
	lo, n uintptr
	rss   int64 // the mapping's resident bytes when measured
}

// measure reads the table mappings and their data ranges, largest
// resident first, and returns them with the tables' resident bytes.
func (t *tableTrimmer) measure() ([]dataRange, int64, error) {
	rc, err := t.smaps()
	if err != nil {
		return nil, 0, fmt.Errorf("table trim: %w", err)
	}
	maps, err := parseTableMappings(rc, t.dir)
	_ = rc.Close()
	if err != nil {
		return nil, 0, fmt.Errorf("table trim: %w", err)
	}
	slices.SortFunc(maps, func(a, b tableMapping) int { return cmp.Compare(b.rss, a.rss) })
	var resident int64
	ranges := make([]dataRange, 0, len(maps))
	for _, m := range maps {
		resident += m.rss
		data, err := tableDataLen(m.path)
		if err != nil {
			continue // compacted away meanwhile, or not a whole table yet
		}
		if data <= m.offset {
			continue
		}
		lo, hi := m.start, min(m.start+(data-m.offset), m.end)&^pageMask
		if hi > lo {
			ranges = append(ranges, dataRange{lo: uintptr(lo), n: uintptr(hi - lo), rss: m.rss})
		}
	}
	return ranges, resident, nil
}

// pageoutRanges pages out the ranges in order until the resident bytes
// they account for fall to floor (or all of them, floor < 0), and returns
// the bytes of the ranges paged out.
func (t *tableTrimmer) pageoutRanges(ranges []dataRange, resident, floor int64) (int64, error) {
	var trimmed int64
	for _, r := range ranges {
		if floor >= 0 && resident <= floor {
			break
		}
		if err := t.pageout(r.lo, r.n); err != nil {
			if errors.Is(err, errPageoutUnsupported) {
				t.disabled.Store(true)
				t.log("warn", "store: cannot bound the resident pages of the table files (%v); they stay mapped until the kernel needs the memory", err)
				return trimmed, nil
			}
			return trimmed, fmt.Errorf("table trim: %#x+%d: %w", r.lo, r.n, err)
		}
		trimmed += int64(r.n) // #nosec G115 -- a mapping's length, far below 2^63
		resident -= r.rss
	}
	t.trimmed.Add(trimmed)
	return trimmed, nil
}

// trimOnce measures the table mappings and, when their resident pages
// exceed the limit, pages out data blocks, largest mapping first, down to
// three quarters of it (so that a store just over its limit is not
// trimmed at every check). It keeps the ranges for tick's fast path and
// returns the resident bytes it found and the bytes of the mappings it
// paged out.
func (t *tableTrimmer) trimOnce() (resident, trimmed int64, err error) {
	if t.disabled.Load() {
		return 0, 0, nil
	}
	ranges, resident, err := t.measure()
	if err != nil {
		return 0, 0, err
	}
	t.known = ranges
	if resident <= t.limit {
		return resident, 0, nil
	}
	trimmed, err = t.pageoutRanges(ranges, resident, t.limit*3/4)
	return resident, trimmed, err
}

func (t *tableTrimmer) log(level, format string, args ...any) {
	if t.logf != nil {
		t.logf(level, format, args...)
	}
}

// run checks every interval until stop is closed; done is closed when it
// returns.
func (t *tableTrimmer) run(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tk := time.NewTicker(interval)
	defer tk.Stop()
	var c trimClock
	for {
		select {
		case <-stop:
			return
		case now := <-tk.C:
			t.tick(&c, now)
		}
	}
}

// trimClock is what run remembers between ticks.
type trimClock struct {
	last     time.Time // last measure of the mappings (trimOnce)
	lastFile int64     // the process's file-backed RSS after it
	tables   int64     // the tables' resident bytes estimated then
}

// tick keeps the tables' resident pages under the limit between measures
// without walking the page tables each time: the process's file-backed
// RSS (a counter) grows as tables are read — faster than the reads, since
// the kernel maps up to 16 cached neighbours of every page faulted in — so
// the tables' resident bytes are estimated as those measured last plus
// that counter's growth from its lowest value since (other mappings going
// away, a memtable's file, must not hide the tables' growth). Over the
// limit, the mappings are measured again and trimmed, at most once per
// trimMeasureGap (tables that compactions wrote since are found so); in
// between, every known table's data blocks are paged out at once. The
// mappings are measured at least every trimFullEvery. It reports whether
// it paged out or measured.
func (t *tableTrimmer) tick(c *trimClock, now time.Time) bool {
	if t.disabled.Load() {
		return false
	}
	file, ferr := t.fileRSS()
	if ferr == nil && file < c.lastFile {
		c.lastFile = file
	}
	due := ferr != nil || c.last.IsZero() || now.Sub(c.last) >= trimFullEvery
	over := c.tables+file-c.lastFile > t.limit
	if !due && !over {
		return false
	}
	if !due && now.Sub(c.last) < trimMeasureGap {
		trimmed, err := t.pageoutRanges(t.known, 0, -1)
		if err != nil {
			t.log("warn", "store: %v", err)
		} else {
			t.log("debug", "store: table pages over the limit of %d bytes: paged out the data blocks of %d bytes of mappings", t.limit, trimmed)
		}
		c.tables = 0
		if f, err := t.fileRSS(); err == nil {
			c.lastFile = f
		}
		return true
	}
	resident, trimmed, err := t.trimOnce()
	switch {
	case err != nil:
		t.log("warn", "store: %v", err)
	case trimmed > 0:
		t.log("debug", "store: table pages resident %d bytes, over the limit of %d: paged out the data blocks of %d bytes of mappings", resident, t.limit, trimmed)
	}
	c.last, c.tables = now, resident
	if trimmed > 0 {
		// What stays is what cannot be paged out (indexes and bloom
		// filters: over 100 MB at ten million sessions) and what is read
		// again: count growth from here, or a store whose indexes alone
		// exceed the limit would be measured every trimMeasureGap.
		c.tables = 0
	}
	if f, err := t.fileRSS(); err == nil {
		c.lastFile = f
	}
	return true
}

// readStatm returns this process's file-backed resident bytes from
// /proc/self/statm (its third field, "shared": RssFile + RssShmem, in
// pages).
func readStatm() (int64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0, fmt.Errorf("statm: %q", b)
	}
	pages, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("statm: %w", err)
	}
	return pages * int64(os.Getpagesize()), nil
}

// openSmaps opens this process's /proc/self/smaps.
func openSmaps() (io.ReadCloser, error) { return os.Open("/proc/self/smaps") }
