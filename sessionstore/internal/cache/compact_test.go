package cache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
)

func never() int64 { panic("nowNano called for an entry without deadline") }

// check verifies the shard invariants: every slot reachable from its home
// through occupied slots, pointing at a live record of its hash in
// [tail, head), used counting the slots, the ring never overfull.
func (c *Compact) check(t testing.TB) {
	t.Helper()
	for si := range c.shards {
		sh := &c.shards[si]
		sh.mu.RLock()
		if sh.head-sh.tail > uint64(len(sh.ring)) {
			t.Fatalf("shard %d: %d bytes live in a ring of %d", si, sh.head-sh.tail, len(sh.ring))
		}
		used := 0
		mask := len(sh.slots) - 1
		for i, s := range sh.slots {
			if s.pos == 0 {
				continue
			}
			used++
			for j := sh.home(s.hash); j != i; j = (j + 1) & mask {
				if sh.slots[j].pos == 0 {
					t.Fatalf("shard %d: slot %d unreachable from home %d", si, i, sh.home(s.hash))
				}
			}
			p := s.pos - 1
			if p < sh.tail || p >= sh.head {
				t.Fatalf("shard %d: slot %d points at %d outside [%d, %d)", si, i, p, sh.tail, sh.head)
			}
			r := sh.at(p)
			if h := c.hash(r[recHeader : recHeader+int(r[4])]); h != s.hash {
				t.Fatalf("shard %d: slot %d hash %x, record's key's %x", si, i, s.hash, h)
			}
		}
		if used != sh.used || used > sh.maxUsed {
			t.Fatalf("shard %d: %d slots used, counted %d, max %d", si, used, sh.used, sh.maxUsed)
		}
		sh.mu.RUnlock()
	}
}

func TestCompactGetPut(t *testing.T) {
	c := NewCompact(1 << 20)
	k := []byte("session-token-hash-0123456789abc")
	v, gen, ok := c.Get(k, nil, never)
	if ok || len(v) != 0 {
		t.Fatal("hit in an empty cache")
	}
	c.Put(k, []byte("value one"), 0, gen)
	buf := make([]byte, 0, 64)
	v, _, ok = c.Get(k, buf, never)
	if !ok || string(v) != "value one" {
		t.Fatalf("got %q %v", v, ok)
	}
	// Replaced in place of the old value.
	_, gen, _ = c.Get([]byte("other"), nil, never)
	_, gen2, _ := c.Get(k, nil, never)
	c.Put(k, []byte("value two, longer"), 0, gen2)
	if v, _, ok = c.Get(k, nil, never); !ok || string(v) != "value two, longer" {
		t.Fatalf("after replace: %q %v", v, ok)
	}
	_ = gen
	if c.Len() != 1 {
		t.Fatalf("Len %d", c.Len())
	}
	// Empty values and empty keys are values like any other.
	_, g, _ := c.Get(nil, nil, never)
	c.Put(nil, nil, 0, g)
	if v, _, ok = c.Get(nil, []byte("x"), never); !ok || string(v) != "x" {
		t.Fatalf("empty key: %q %v", v, ok)
	}
	c.check(t)
}

func TestCompactFence(t *testing.T) {
	c := NewCompact(1 << 20)
	k := []byte("k")
	_, gen, _ := c.Get(k, nil, never)
	c.Invalidate(k) // a writer committed after the reader's Get
	c.Put(k, []byte("stale"), 0, gen)
	if _, _, ok := c.Get(k, nil, never); ok {
		t.Fatal("a put that raced with an invalidation was stored")
	}
	_, gen, _ = c.Get(k, nil, never)
	c.Clear()
	c.Put(k, []byte("stale"), 0, gen)
	if _, _, ok := c.Get(k, nil, never); ok {
		t.Fatal("a put that raced with Clear was stored")
	}
	_, gen, _ = c.Get(k, nil, never)
	c.Put(k, []byte("fresh"), 0, gen)
	if v, _, ok := c.Get(k, nil, never); !ok || string(v) != "fresh" {
		t.Fatalf("got %q %v", v, ok)
	}
	c.Invalidate(k)
	if _, _, ok := c.Get(k, nil, never); ok {
		t.Fatal("hit after Invalidate")
	}
	c.check(t)
}

func TestCompactDeadline(t *testing.T) {
	c := NewCompact(1 << 20)
	now := int64(1000)
	clock := func() int64 { return now }
	_, gen, _ := c.Get([]byte("k"), nil, clock)
	c.Put([]byte("k"), []byte("v"), 2000, gen)
	if _, _, ok := c.Get([]byte("k"), nil, clock); !ok {
		t.Fatal("miss before the deadline")
	}
	now = 2000
	if _, _, ok := c.Get([]byte("k"), nil, clock); ok {
		t.Fatal("hit at the deadline")
	}
}

func TestCompactLongKeysAndValues(t *testing.T) {
	c := NewCompact(1 << 20)
	long := bytes.Repeat([]byte("k"), MaxKey+1)
	_, gen, _ := c.Get(long, nil, never)
	c.Put(long, []byte("v"), 0, gen)
	if _, _, ok := c.Get(long, nil, never); ok {
		t.Fatal("a key longer than MaxKey was stored")
	}
	c.Invalidate(long) // no panic
	k := []byte("big")
	_, gen, _ = c.Get(k, nil, never)
	c.Put(k, make([]byte, len(c.shardOf(c.hash(k)).ring)), 0, gen)
	if _, _, ok := c.Get(k, nil, never); ok {
		t.Fatal("a value larger than the ring was stored")
	}
	c.check(t)
}

// TestCompactEviction fills the cache far beyond its size: it stays
// within its bytes, keeps the newest entries and serves no wrong value.
func TestCompactEviction(t *testing.T) {
	const size = 1 << 20
	c := NewCompact(size)
	if got := c.Size(); got > size+Shards*64 {
		t.Fatalf("Size %d above %d", got, size)
	}
	val := func(i int) []byte { return fmt.Appendf(nil, "value-%d-%s", i, bytes.Repeat([]byte{'x'}, i%300)) }
	const n = 50000
	for i := range n {
		k := fmt.Appendf(nil, "key-%d", i)
		_, gen, _ := c.Get(k, nil, never)
		c.Put(k, val(i), 0, gen)
	}
	c.check(t)
	if c.Len() == 0 || c.Len() >= n {
		t.Fatalf("Len %d after %d puts", c.Len(), n)
	}
	hits := 0
	for i := range n {
		v, _, ok := c.Get(fmt.Appendf(nil, "key-%d", i), nil, never)
		if !ok {
			continue
		}
		hits++
		if !bytes.Equal(v, val(i)) {
			t.Fatalf("key-%d: wrong value %q", i, v)
		}
	}
	if hits != c.Len() {
		t.Fatalf("%d hits, Len %d", hits, c.Len())
	}
	// Oldest first: the last thousand are all there.
	for i := n - 1000; i < n; i++ {
		if _, _, ok := c.Get(fmt.Appendf(nil, "key-%d", i), nil, never); !ok {
			t.Fatalf("key-%d, among the newest, was evicted", i)
		}
	}
	t.Logf("%d of %d entries in %d bytes", c.Len(), n, c.Size())
}

// TestCompactSecondChance: an entry read at least once while a quarter
// of its shard's ring is written survives many times the cache's size of
// newer entries; an unread one of its age does not. (Read every 5
// fillers, of which a shard gets 5/64 on average; a quarter of a ring is
// ~4.5 fillers.)
func TestCompactSecondChance(t *testing.T) {
	c := NewCompact(256 << 10)
	put := func(k []byte, v []byte) {
		_, gen, _ := c.Get(k, nil, never)
		c.Put(k, v, 0, gen)
	}
	hot, cold := []byte("hot"), []byte("cold")
	put(hot, []byte("hot value"))
	put(cold, []byte("cold value"))
	val := bytes.Repeat([]byte{'x'}, 200)
	for i := range 20000 {
		put(fmt.Appendf(nil, "filler-%d", i), val)
		if i%5 == 0 {
			if v, _, ok := c.Get(hot, nil, never); !ok || string(v) != "hot value" {
				t.Fatalf("after %d fillers the entry in use was evicted (%q %v)", i, v, ok)
			}
		}
	}
	if _, _, ok := c.Get(cold, nil, never); ok {
		t.Fatal("the unread entry survived 20 000 newer ones")
	}
	c.check(t)
}

// TestCompactSmallRecordsFillIndex: many tiny records fill the index
// before the ring; the index stays at most 3/4 full.
func TestCompactSmallRecordsFillIndex(t *testing.T) {
	c := NewCompact(256 << 10)
	for i := range 100000 {
		k := binary.LittleEndian.AppendUint32(nil, uint32(i))
		_, gen, _ := c.Get(k, nil, never)
		c.Put(k, nil, 0, gen)
	}
	c.check(t)
}

func TestCompactNil(t *testing.T) {
	var c *Compact
	if NewCompact(0) != nil {
		t.Fatal("NewCompact(0) is not nil")
	}
	_, _, ok := c.Get([]byte("k"), nil, never)
	c.Put([]byte("k"), []byte("v"), 0, 0)
	c.Invalidate([]byte("k"))
	c.Clear()
	if ok || c.Len() != 0 || c.Size() != 0 {
		t.Fatal("nil cache is not empty")
	}
}

// TestCompactConcurrent runs readers, writers and invalidators on a small
// cache (constant eviction) under -race: a value read is always the one
// written for its key, and after an invalidation that followed the last
// write nobody sees a value again.
func TestCompactConcurrent(t *testing.T) {
	c := NewCompact(128 << 10)
	const keys = 512
	val := func(k, v int) []byte { return fmt.Appendf(nil, "%d=%d%s", k, v, bytes.Repeat([]byte{'.'}, k%97)) }
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1)) // #nosec G115 -- w >= 0
			var buf []byte
			for n := range 30000 {
				k := r.IntN(keys)
				key := fmt.Appendf(nil, "key-%d", k)
				var gen uint64
				var ok bool
				buf, gen, ok = c.Get(key, buf[:0], never)
				if ok {
					var gk, gv int
					if _, err := fmt.Sscanf(string(buf), "%d=%d", &gk, &gv); err != nil || gk != k || !bytes.Equal(buf, val(k, gv)) {
						t.Errorf("key %d: read %q", k, buf)
						return
					}
					continue
				}
				switch r.IntN(4) {
				case 0:
					c.Invalidate(key)
				default:
					c.Put(key, val(k, n), 0, gen)
				}
			}
		}()
	}
	wg.Wait()
	c.check(t)
	for k := range keys {
		c.Invalidate(fmt.Appendf(nil, "key-%d", k))
	}
	if c.Len() != 0 {
		t.Fatalf("Len %d after invalidating every key", c.Len())
	}
}

// FuzzCompact drives the cache with a random sequence of operations and
// checks it against a model: a hit returns the last value put for the key
// (no value of another key, no invalidated one), and the invariants hold.
func FuzzCompact(f *testing.F) {
	f.Add([]byte{0, 1, 10, 1, 1, 0, 2, 1, 0, 1, 1, 0})
	f.Add(bytes.Repeat([]byte{0, 3, 200, 1, 7, 0}, 50))
	f.Fuzz(func(t *testing.T, ops []byte) {
		c := NewCompact(64 << 10) // one 4 KiB ring per shard: evicts early
		model := map[string][]byte{}
		for len(ops) >= 3 {
			op, k, n := ops[0]%5, ops[1]%32, int(ops[2])*5
			ops = ops[3:]
			key := fmt.Appendf(nil, "k%d", k)
			switch op {
			case 0, 1: // put
				v := bytes.Repeat([]byte{k}, n)
				_, gen, _ := c.Get(key, nil, never)
				c.Put(key, v, 0, gen)
				model[string(key)] = v
			case 2: // invalidate
				c.Invalidate(key)
				delete(model, string(key))
			case 3: // a put that raced with an invalidation
				_, gen, _ := c.Get(key, nil, never)
				c.Invalidate(key)
				delete(model, string(key))
				c.Put(key, []byte("stale"), 0, gen)
			case 4:
				if k == 0 {
					c.Clear()
					clear(model)
				} else if v, _, ok := c.Get(key, nil, never); ok && !bytes.Equal(v, model[string(key)]) {
					t.Fatalf("%s: read %d bytes, want %d", key, len(v), len(model[string(key)]))
				}
			}
			for mk, mv := range model {
				if v, _, ok := c.Get([]byte(mk), nil, never); ok && !bytes.Equal(v, mv) {
					t.Fatalf("%s: got %d bytes, want %d", mk, len(v), len(mv))
				}
			}
			for k := range 32 {
				key := fmt.Appendf(nil, "k%d", k)
				if _, in := model[string(key)]; in {
					continue
				}
				if _, _, ok := c.Get(key, nil, never); ok {
					t.Fatalf("%s: hit for a key not in the model", key)
				}
			}
		}
		c.check(t)
	})
}

func BenchmarkCompactGet(b *testing.B) {
	c := NewCompact(64 << 20)
	const n = 100000
	keys := make([][]byte, n)
	val := bytes.Repeat([]byte{'v'}, 250)
	for i := range keys {
		keys[i] = binary.LittleEndian.AppendUint64(make([]byte, 0, 33), rand.Uint64())
		keys[i] = append(keys[i], bytes.Repeat([]byte{'h'}, 25)...)
		_, gen, _ := c.Get(keys[i], nil, never)
		c.Put(keys[i], val, 0, gen)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 512)
		i := rand.IntN(n)
		for pb.Next() {
			var ok bool
			buf, _, ok = c.Get(keys[i%n], buf[:0], never)
			if !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

func BenchmarkCompactPut(b *testing.B) {
	c := NewCompact(16 << 20)
	val := bytes.Repeat([]byte{'v'}, 250)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := make([]byte, 33)
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			binary.LittleEndian.PutUint64(key, r.Uint64())
			_, gen, _ := c.Get(key, nil, never)
			c.Put(key, val, 0, gen)
		}
	})
}

// scannable is the heap the garbage collector has to scan (the
// /gc/scan/heap metric), after a collection.
func scannable() (scan, live uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// TestGCScanPerEntry: a compact entry costs the collector nothing to
// scan (BenchmarkGCScanPerEntry reports the figures for a million).
func TestGCScanPerEntry(t *testing.T) {
	compactScan, _, mapScan, _ := gcScanPerEntry(t, 100000)
	if compactScan > 1 {
		t.Errorf("the compact cache costs the collector %.1f scannable bytes per entry", compactScan)
	}
	if mapScan < 100 {
		t.Errorf("the decoded-value cache costs the collector %.1f scannable bytes per entry: the comparison measures nothing", mapScan)
	}
}

// BenchmarkGCScanPerEntry reports what one entry costs the collector (the
// bytes it scans, /gc/scan/heap) and the heap (live bytes), for the
// compact cache and for the decoded-value Cache, each filled with
// 1 000 000 entries. Values of the decoded cache are structs shaped like
// a cached session (strings, a slice of structs, a hash). Run it with
// -benchtime=1x.
func BenchmarkGCScanPerEntry(b *testing.B) {
	for b.Loop() {
		cs, cl, ms, ml := gcScanPerEntry(b, 1000000)
		b.ReportMetric(cs, "compact-scan-B/entry")
		b.ReportMetric(cl, "compact-live-B/entry")
		b.ReportMetric(ms, "decoded-scan-B/entry")
		b.ReportMetric(ml, "decoded-live-B/entry")
	}
}

func gcScanPerEntry(t testing.TB, n int) (compactScan, compactLive, mapScan, mapLive float64) {
	type method struct{ name, aal string }
	type decoded struct {
		id, identity, aal string
		methods           []method
		hash              []byte
		exp               int64
	}
	key := make([]byte, 33)
	val := bytes.Repeat([]byte{'v'}, 250)

	scan0, live0 := scannable()
	c := NewCompact(int64(n) * 330)
	for i := range n {
		binary.LittleEndian.PutUint64(key, uint64(i)) // #nosec G115 -- i >= 0
		c.Put(key, val, 0, 0)
	}
	scan1, live1 := scannable()
	if c.Len() < n*9/10 {
		t.Fatalf("compact cache kept %d of %d", c.Len(), n)
	}
	compactScan = float64(int64(scan1)-int64(scan0)) / float64(n) // #nosec G115 -- heap sizes
	compactLive = float64(int64(live1)-int64(live0)) / float64(n) // #nosec G115 -- heap sizes
	runtime.KeepAlive(c)
	c = nil

	scan0, live0 = scannable()
	m := New[*decoded](n)
	for i := range n {
		binary.LittleEndian.PutUint64(key, uint64(i)) // #nosec G115 -- i >= 0
		d := &decoded{
			id: fmt.Sprintf("%036d", i), identity: fmt.Sprintf("%036d", i/10), aal: "aal1",
			methods: []method{{"password", "aal1"}}, hash: bytes.Clone(key[:32]), exp: int64(i),
		}
		m.Put(key, d, 0, 0)
	}
	scan1, live1 = scannable()
	mapScan = float64(int64(scan1)-int64(scan0)) / float64(m.Len()) // #nosec G115 -- heap sizes
	mapLive = float64(int64(live1)-int64(live0)) / float64(m.Len()) // #nosec G115 -- heap sizes
	runtime.KeepAlive(m)
	t.Logf("per entry, %d entries: compact cache %.1f scannable bytes (%.0f live); decoded-value cache %.1f scannable (%.0f live)",
		n, compactScan, compactLive, mapScan, mapLive)
	return compactScan, compactLive, mapScan, mapLive
}
