package cache

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"runtime"
	"sync"
)

// Compact is a byte-bounded cache of encoded records that holds no
// pointers the garbage collector has to follow: each shard is one byte
// ring (the records, written one after the other) and one flat array of
// fixed-size index slots (a 64-bit key hash and the record's position).
// A million entries cost the collector one noscan object per shard, where
// a map of decoded values costs it every object of every value. On Unix
// the rings are one anonymous memory mapping outside the Go heap, so they
// do not count towards the heap goal either (GOGC would otherwise let the
// heap grow by as much again), and untouched pages cost no memory.
//
// Records are evicted oldest first (the ring's tail) when the ring or the
// index is full, except that a record read while in the oldest quarter
// of the ring is moved to the head (a second chance: entries in use stay,
// as with LRU). An entry whose value was replaced or invalidated stays in
// the ring as dead bytes until the tail passes it.
//
// Staleness guard: as Cache's. Get returns the shard's generation with a
// miss; Put inserts only if it is unchanged; Invalidate and Clear bump it.
// A nil *Compact is a disabled cache.
type Compact struct {
	seed   maphash.Seed
	shards [Shards]compactShard
}

type compactShard struct {
	mu  sync.RWMutex
	gen uint64
	// ring holds the records; live ones lie in [tail, head), positions
	// counted from the shard's creation (physical offset: pos % len).
	ring       []byte
	head, tail uint64
	// slots is the open-addressing index (linear probing, backward-shift
	// deletion); used counts the occupied slots, at most maxUsed.
	slots   []slot
	used    int
	maxUsed int
	_       [64]byte // keep neighbouring shard locks off one cache line
}

// slot is one index entry; pos is the record's position + 1 (0: empty).
type slot struct {
	hash uint64
	pos  uint64
}

// Record layout in the ring, unaligned (encoding/binary reads it):
//
//	[0:4)   total length (header, key, value)
//	[4]     key length (fillMark: a filler up to the ring's end)
//	[5:13)  deadline, unix nanoseconds (0: none)
//	[13:…)  key, then value
//
// Less than recHeader bytes before the ring's end are an implicit filler.
const (
	recHeader = 13
	fillMark  = 0xff
	// MaxKey is the longest key Compact stores.
	MaxKey = fillMark - 1
	// avgRecord is the record size the index is sized for: a session
	// record is ~250 bytes, an identity's ~450.
	avgRecord = 256
	// minShardRing keeps tiny caches (tests) usable.
	minShardRing = 4 << 10
	slotBytes    = 16
)

// NewCompact returns a cache of about size bytes (records and index),
// or nil when size <= 0.
func NewCompact(size int64) *Compact {
	if size <= 0 {
		return nil
	}
	c := &Compact{seed: maphash.MakeSeed()}
	per := size / Shards
	// About one slot per avgRecord bytes, rounded up to a power of two,
	// at most 3/4 full: the index is ~8 % of the budget.
	want := max(per/avgRecord*4/3, 16)
	nslots := 1 << bits.Len64(uint64(want-1)) // #nosec G115 -- want >= 16
	ring := int(max(per-int64(nslots)*slotBytes, minShardRing))
	mem, free := allocRing(ring * Shards)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.ring = mem[i*ring : (i+1)*ring : (i+1)*ring]
		sh.slots = make([]slot, nslots)
		sh.maxUsed = nslots * 3 / 4
	}
	if free != nil {
		// Readers reach the rings only through c, so once c is
		// unreachable nobody reads them.
		runtime.AddCleanup(c, func(free func()) { free() }, free)
	}
	return c
}

func (c *Compact) hash(key []byte) uint64 { return maphash.Bytes(c.seed, key) }

func (c *Compact) shardOf(h uint64) *compactShard { return &c.shards[h&(Shards-1)] }

// home is the first slot a hash probes; the low bits chose the shard.
func (sh *compactShard) home(h uint64) int {
	return int((h >> 6) & uint64(len(sh.slots)-1)) // #nosec G115 -- masked to the slot count
}

func (sh *compactShard) at(pos uint64) []byte {
	return sh.ring[pos%uint64(len(sh.ring)):]
}

// find returns the slot index of key, or -1.
func (sh *compactShard) find(h uint64, key []byte) int {
	mask := len(sh.slots) - 1
	for i := sh.home(h); ; i = (i + 1) & mask {
		s := sh.slots[i]
		if s.pos == 0 {
			return -1
		}
		if s.hash == h {
			r := sh.at(s.pos - 1)
			if int(r[4]) == len(key) && string(r[recHeader:recHeader+len(key)]) == string(key) {
				return i
			}
		}
	}
}

// remove empties slot i, shifting the entries of its probe run back so
// that every entry stays reachable from its home slot.
func (sh *compactShard) remove(i int) {
	mask := len(sh.slots) - 1
	j := i
	for {
		j = (j + 1) & mask
		s := sh.slots[j]
		if s.pos == 0 {
			break
		}
		k := sh.home(s.hash)
		// s stays when its home lies cyclically in (i, j].
		if (i <= j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue
		}
		sh.slots[i] = s
		i = j
	}
	sh.slots[i] = slot{}
	sh.used--
}

// evictTail drops the oldest record (and its slot, if it is still the
// entry of its key). False when the ring is empty.
func (sh *compactShard) evictTail(seed maphash.Seed) bool {
	if sh.tail == sh.head {
		return false
	}
	size := uint64(len(sh.ring))
	if rest := size - sh.tail%size; rest < recHeader {
		sh.tail += rest // an implicit filler
		return true
	}
	r := sh.at(sh.tail)
	total := binary.LittleEndian.Uint32(r)
	if klen := int(r[4]); klen != fillMark {
		h := maphash.Bytes(seed, r[recHeader:recHeader+klen])
		mask := len(sh.slots) - 1
		for i := sh.home(h); sh.slots[i].pos != 0; i = (i + 1) & mask {
			if sh.slots[i].pos == sh.tail+1 {
				sh.remove(i)
				break
			}
		}
	}
	sh.tail += uint64(total)
	return true
}

// Get appends the value of key to dst. On a miss it returns the shard's
// generation to pass to Put. nowNano is only called for entries with a
// deadline; past it the entry is a miss.
func (c *Compact) Get(key, dst []byte, nowNano func() int64) ([]byte, uint64, bool) {
	dst, _, gen, ok := c.GetDeadline(key, dst, nowNano)
	return dst, gen, ok
}

// GetDeadline is Get that also returns the entry's deadline (0: none).
func (c *Compact) GetDeadline(key, dst []byte, nowNano func() int64) ([]byte, int64, uint64, bool) {
	if c == nil {
		return dst, 0, 0, false
	}
	h := c.hash(key)
	sh := c.shardOf(h)
	sh.mu.RLock()
	gen := sh.gen
	if len(key) > MaxKey {
		sh.mu.RUnlock()
		return dst, 0, gen, false
	}
	i := sh.find(h, key)
	if i < 0 {
		sh.mu.RUnlock()
		return dst, 0, gen, false
	}
	pos := sh.slots[i].pos - 1
	r := sh.at(pos)
	d := int64(binary.LittleEndian.Uint64(r[5:])) // #nosec G115 -- stored from an int64
	if d != 0 && nowNano() >= d {
		sh.mu.RUnlock()
		return dst, 0, gen, false
	}
	from := len(dst)
	dst = append(dst, r[recHeader+len(key):binary.LittleEndian.Uint32(r)]...)
	old := pos-sh.tail < uint64(len(sh.ring))/4
	sh.mu.RUnlock()
	if old {
		c.refresh(sh, h, key, dst[from:], d, pos)
	}
	return dst, d, gen, true
}

// Put stores val under key unless a writer invalidated the shard since
// the Get that returned gen. deadline is when the entry stops being
// served (unix nanoseconds; 0: never). A record larger than an eighth of
// the shard's ring is not stored.
func (c *Compact) Put(key, val []byte, deadline int64, gen uint64) {
	if c == nil || len(key) > MaxKey {
		return
	}
	h := c.hash(key)
	sh := c.shardOf(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen != gen {
		return
	}
	if i := sh.find(h, key); i >= 0 {
		sh.remove(i) // the old record becomes dead bytes
	}
	sh.append(c.seed, h, key, val, deadline)
}

// refresh moves the record of key at pos, which a reader just found in
// the oldest quarter of the ring, to the head, so that entries in use
// are not evicted oldest-first (a second chance, as LRU would give them).
// val is the reader's copy of its value. Nothing happens when the entry
// changed meanwhile (replaced, invalidated or refreshed by another).
func (c *Compact) refresh(sh *compactShard, h uint64, key, val []byte, deadline int64, pos uint64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.find(h, key)
	if i < 0 || sh.slots[i].pos != pos+1 {
		return
	}
	sh.remove(i)
	sh.append(c.seed, h, key, val, deadline)
}

// append writes a record at the head, evicting from the tail to make
// room, and indexes it. A record larger than an eighth of the ring is
// not stored. The caller holds the write lock and has removed any entry
// of key.
func (sh *compactShard) append(seed maphash.Seed, h uint64, key, val []byte, deadline int64) {
	size := uint64(len(sh.ring))
	need := uint64(recHeader + len(key) + len(val))
	if need > size/8 {
		return
	}
	// A record never wraps: when it does not fit before the ring's end,
	// the rest of the ring is filled and it starts at offset 0.
	var fill uint64
	if rest := size - sh.head%size; rest < need {
		fill = rest
	}
	for size-(sh.head-sh.tail) < fill+need || sh.used >= sh.maxUsed {
		if !sh.evictTail(seed) {
			break
		}
	}
	if fill >= recHeader {
		r := sh.at(sh.head)
		binary.LittleEndian.PutUint32(r, uint32(fill)) // #nosec G115 -- below the ring size
		r[4] = fillMark
	}
	sh.head += fill
	pos := sh.head
	r := sh.at(pos)[:need]
	binary.LittleEndian.PutUint32(r, uint32(need))         // #nosec G115 -- below the ring size
	r[4] = byte(len(key))                                  // #nosec G115 -- len(key) <= MaxKey, checked above
	binary.LittleEndian.PutUint64(r[5:], uint64(deadline)) // #nosec G115 -- read back as int64
	copy(r[recHeader:], key)
	copy(r[recHeader+len(key):], val)
	sh.head += need
	mask := len(sh.slots) - 1
	i := sh.home(h)
	for sh.slots[i].pos != 0 {
		i = (i + 1) & mask
	}
	sh.slots[i] = slot{hash: h, pos: pos + 1}
	sh.used++
}

// Invalidate drops key and fences out in-flight readers of its shard.
// Call it after the write that changed the value has committed.
func (c *Compact) Invalidate(key []byte) {
	if c == nil || len(key) == 0 {
		return
	}
	h := c.hash(key)
	sh := c.shardOf(h)
	sh.mu.Lock()
	if len(key) <= MaxKey {
		if i := sh.find(h, key); i >= 0 {
			sh.remove(i)
		}
	}
	sh.gen++
	sh.mu.Unlock()
}

// Clear drops every entry and fences out every in-flight reader. Its loop
// repeats Cache.Clear's on purpose: the shards are of another type.
func (c *Compact) Clear() {
	if c == nil {
		return
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.slots)
		sh.used = 0
		sh.tail = sh.head
		sh.gen++
		sh.mu.Unlock()
	}
}

// Len reports the number of entries.
func (c *Compact) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += sh.used
		sh.mu.RUnlock()
	}
	return n
}

// Size reports the bytes the cache holds allocated (rings and indexes),
// whether or not they are in use yet.
func (c *Compact) Size() int64 {
	if c == nil {
		return 0
	}
	var n int64
	for i := range c.shards {
		sh := &c.shards[i]
		n += int64(len(sh.ring)) + int64(len(sh.slots))*slotBytes
	}
	return n
}
