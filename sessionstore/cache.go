package sessionstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/caddy-kratos/caddy-kratos/sessionstore/internal/cache"
)

// Caches is the per-node cache every engine keeps in front of its session
// and shared-identity reads (GetSessionByTokenHash, GetIdentityShared),
// in two tiers:
//
//   - the decoded tier: the shared *Session and *Identity values the hot
//     paths hand out, a few thousand of each (Options.SessionCacheSize),
//     so the busiest sessions are served without decoding or allocating;
//   - the compact tier: every cached session and identity as a binary
//     record (record.go) in internal/cache.Compact, bounded by bytes
//     (Options.SessionCacheBytes) and holding nothing the garbage
//     collector has to scan. A hit there decodes the record (a handful
//     of allocations, no JSON) and moves the value into the decoded tier.
//
// Both tiers have the generation fence of internal/cache: a reader that
// raced with a write can never put the old value back in either. Writers
// call Invalidate* after their commit; those drop the compact tier's
// entry before the decoded tier's, since a reader moves values from the
// compact tier up. A nil *Caches caches nothing.
type Caches struct {
	sessions   *cache.Cache[*Session]
	identities *cache.Cache[*Identity]
	compact    *cache.Compact
}

// CacheFence is what a missed lookup of Caches hands to the Put that
// follows the read from storage.
type CacheFence struct{ decoded, compact uint64 }

// Default cache sizes of both engines.
const (
	// DefaultSessionCacheSize is the decoded tier's default: entries of
	// each kind. A decoded session and its identity hold ~2 KiB of Go
	// heap, which the collector scans and doubles (GOGC=100); 4 096 of
	// each keep a busy working set at 0 allocations per lookup for ~9 MB
	// of live heap, and the compact tier (~1 µs a decode) holds the rest
	// (10 000 held ~22 MB and served a uniform spread of 100 000 active
	// sessions barely better: docs/benchmarks.md).
	DefaultSessionCacheSize = 4096
	// DefaultSessionCacheBytes is the compact tier's default.
	DefaultSessionCacheBytes = 64 << 20
)

// NewCaches returns the caches of an engine. entries bounds the decoded
// tier (entries of each kind; 0: DefaultSessionCacheSize) and bytes the
// compact tier (0: DefaultSessionCacheBytes; negative: no compact tier).
// Negative entries disables both: NewCaches returns nil.
func NewCaches(entries int, bytes int64) *Caches {
	if entries < 0 {
		return nil
	}
	if entries == 0 {
		entries = DefaultSessionCacheSize
	}
	if bytes == 0 {
		bytes = DefaultSessionCacheBytes
	}
	return &Caches{
		sessions:   cache.New[*Session](entries),
		identities: cache.New[*Identity](entries),
		compact:    cache.NewCompact(bytes),
	}
}

// Compact-tier keys: a kind byte, then the token hash or identity id.
const (
	kindSessionKey  = 's'
	kindIdentityKey = 'i'
)

// compactKey builds a compact-tier key in kb when it fits.
func compactKey(kb *[72]byte, kind byte, key []byte) []byte {
	kb[0] = kind
	if len(key) < len(kb) {
		return kb[:1+copy(kb[1:], key)]
	}
	return append([]byte{kind}, key...)
}

// recordBufs lends the hot paths scratch memory for records.
var recordBufs = sync.Pool{New: func() any {
	return &recordBuf{rec: make([]byte, 0, 1024)}
}}

type recordBuf struct {
	rec []byte
	w   recordWriter
}

func (b *recordBuf) release() {
	if cap(b.rec) <= 64<<10 && cap(b.w.b) <= 64<<10 && cap(b.w.bytes) <= 64<<10 {
		recordBufs.Put(b)
	}
}

// ServeSession is GetSessionByTokenHash of every engine: ctx and the
// engine's guard are checked, an empty hash is ErrNotFound, then the
// session comes from c or else from load (the engine's read of storage,
// which enters g itself), and is cached until deadline(sess) (unix
// nanoseconds; 0: never). c may be nil (no caching).
func (c *Caches) ServeSession(ctx context.Context, g *Guard, hash []byte, load func() (*Session, error), deadline func(*Session) int64) (*Session, error) {
	// One function and one exit for errors: a hit takes no further call.
	err := g.Ready(ctx)
	if err == nil && len(hash) == 0 {
		err = ErrNotFound
	}
	if err == nil {
		sess, fence, ok := c.Session(hash)
		if ok {
			return sess, nil
		}
		if sess, err = load(); err == nil {
			c.PutSession(hash, sess, deadline(sess), fence)
			return sess, nil
		}
	}
	return nil, fmt.Errorf("sessionstore: get session by token: %w", err)
}

// ServeIdentity is GetIdentityShared of every engine: the shared identity
// of id from c, or else get's (the engine's GetIdentity, whose errors it
// returns as they are) trimmed by ShareIdentity and cached. c may be nil.
// Its read-through repeats ServeSession's on purpose: the two differ in
// key, deadline and trimming, and one generic read-through would put
// indirect calls on both hot paths.
func (c *Caches) ServeIdentity(id string, get func() (*Identity, error)) (*Identity, error) {
	ident, fence, ok := c.Identity(id)
	if ok {
		return ident, nil
	}
	ident, err := get()
	if err != nil {
		return nil, err
	}
	ident = sharedIdentity(ident)
	c.PutIdentity(ident, fence)
	return ident, nil
}

// Session returns the cached session of a token hash (shared: read-only)
// or, on a miss, the fence for PutSession.
func (c *Caches) Session(hash []byte) (*Session, CacheFence, bool) {
	if c == nil {
		return nil, CacheFence{}, false
	}
	s, g, ok := c.sessions.Get(hash, unixNanoNow)
	if ok {
		return s, CacheFence{}, true
	}
	f := CacheFence{decoded: g}
	if c.compact == nil {
		return nil, f, false
	}
	var kb [72]byte
	buf := recordBufs.Get().(*recordBuf)
	defer buf.release()
	var deadline int64
	buf.rec, deadline, f.compact, ok = c.compact.GetDeadline(compactKey(&kb, kindSessionKey, hash), buf.rec[:0], unixNanoNow)
	if !ok {
		return nil, f, false
	}
	s, err := decodeSessionRecord(buf.rec, hash)
	if err != nil {
		return nil, f, false
	}
	c.sessions.Put(hash, s, deadline, f.decoded)
	return s, CacheFence{}, true
}

// PutSession caches a session read from storage under its token hash
// unless a write invalidated it since the lookup that returned f.
// deadline is when the engine stops serving it (unix nanoseconds; 0:
// never). The cache keeps s: the caller must not modify it afterwards.
func (c *Caches) PutSession(hash []byte, s *Session, deadline int64, f CacheFence) {
	if c == nil {
		return
	}
	if c.compact != nil {
		buf := recordBufs.Get().(*recordBuf)
		rec, ok := appendSessionRecord(&buf.w, buf.rec[:0], hash, s)
		buf.rec = rec
		if ok {
			var kb [72]byte
			c.compact.Put(compactKey(&kb, kindSessionKey, hash), rec, deadline, f.compact)
		}
		buf.release()
	}
	c.sessions.Put(hash, s, deadline, f.decoded)
}

// InvalidateSessions is InvalidateSession of each hash.
func (c *Caches) InvalidateSessions(hashes ...[]byte) {
	for _, h := range hashes {
		c.InvalidateSession(h)
	}
}

// InvalidateSession drops a token hash from both tiers and fences out
// readers in flight. Call it after the write has committed.
func (c *Caches) InvalidateSession(hash []byte) {
	if c == nil || len(hash) == 0 {
		return
	}
	// The compact tier first: the decoded tier fills from it, so a reader
	// between the two could otherwise move the old record up again.
	var kb [72]byte
	c.compact.Invalidate(compactKey(&kb, kindSessionKey, hash))
	c.sessions.Invalidate(hash)
}

// Identity returns the cached shared identity of id (read-only) or, on a
// miss, the fence for PutIdentity.
func (c *Caches) Identity(id string) (*Identity, CacheFence, bool) {
	if c == nil {
		return nil, CacheFence{}, false
	}
	// A UUID is longer than the compiler's 32-byte stack buffer for
	// []byte(id): the key goes into our own, so a hit allocates nothing.
	var kb [72]byte
	key := compactKey(&kb, kindIdentityKey, []byte(id))
	ident, g, ok := c.identities.Get(key[1:], unixNanoNow)
	if ok {
		return ident, CacheFence{}, true
	}
	f := CacheFence{decoded: g}
	if c.compact == nil {
		return nil, f, false
	}
	buf := recordBufs.Get().(*recordBuf)
	defer buf.release()
	buf.rec, f.compact, ok = c.compact.Get(key, buf.rec[:0], unixNanoNow)
	if !ok {
		return nil, f, false
	}
	ident, err := decodeIdentityRecord(buf.rec)
	if err != nil || ident.ID != id {
		return nil, f, false
	}
	c.identities.Put(key[1:], ident, 0, f.decoded)
	return ident, CacheFence{}, true
}

// PutIdentity caches a shared identity (ShareIdentity) read from storage
// unless a write invalidated it since the lookup that returned f.
func (c *Caches) PutIdentity(ident *Identity, f CacheFence) {
	if c == nil {
		return
	}
	var kb [72]byte
	key := compactKey(&kb, kindIdentityKey, []byte(ident.ID))
	if c.compact != nil {
		buf := recordBufs.Get().(*recordBuf)
		rec, ok := appendIdentityRecord(&buf.w, buf.rec[:0], ident)
		buf.rec = rec
		if ok {
			c.compact.Put(key, rec, 0, f.compact)
		}
		buf.release()
	}
	c.identities.Put(key[1:], ident, 0, f.decoded)
}

// InvalidateIdentity drops an identity id from both tiers and fences out
// readers in flight. Call it after the write has committed.
func (c *Caches) InvalidateIdentity(id []byte) {
	if c == nil || len(id) == 0 {
		return
	}
	var kb [72]byte
	c.compact.Invalidate(compactKey(&kb, kindIdentityKey, id)) // first, as in InvalidateSession
	c.identities.Invalidate(id)
}

// Clear empties both tiers and fences out every reader in flight: for a
// node that may have missed invalidations.
func (c *Caches) Clear() {
	if c == nil {
		return
	}
	c.compact.Clear() // first, as in InvalidateSession
	c.sessions.Clear()
	c.identities.Clear()
}

// Lens reports the entries of the decoded tier (sessions and identities)
// and of the compact tier.
func (c *Caches) Lens() (decoded, compact int) {
	if c == nil {
		return 0, 0
	}
	return c.sessions.Len() + c.identities.Len(), c.compact.Len()
}

// Len reports the entries of the compact tier (every cached session and
// identity), or of the decoded tier when there is no compact tier.
func (c *Caches) Len() int {
	if c == nil {
		return 0
	}
	if c.compact != nil {
		return c.compact.Len()
	}
	return c.sessions.Len() + c.identities.Len()
}
