package session

import (
	"cmp"
	"hash/maphash"
	"sync"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// boundedMap is a small sharded map with a size bound (random eviction)
// for the gate's per-session and per-identity caches. Its zero value is
// ready and holds up to 16 × 2048 entries.
type boundedMap[V any] struct {
	once sync.Once
	seed maphash.Seed
	// perShard bounds each of the 16 shards. Default (0): 2048.
	perShard int
	shards   [boundedShards]boundedShard[V]
}

const boundedShards = 16

type boundedShard[V any] struct {
	mu sync.RWMutex
	m  map[string]V
	_  [40]byte // keep neighbouring locks off one cache line
}

func (b *boundedMap[V]) shard(key string) *boundedShard[V] {
	b.once.Do(func() {
		b.seed = maphash.MakeSeed()
		for i := range b.shards {
			b.shards[i].m = make(map[string]V)
		}
	})
	return &b.shards[maphash.String(b.seed, key)&(boundedShards-1)]
}

func (b *boundedMap[V]) load(key string) (V, bool) {
	sh := b.shard(key)
	sh.mu.RLock()
	v, ok := sh.m[key]
	sh.mu.RUnlock()
	return v, ok
}

func (b *boundedMap[V]) store(key string, v V) {
	sh := b.shard(key)
	sh.mu.Lock()
	if _, ok := sh.m[key]; !ok && len(sh.m) >= cmp.Or(b.perShard, 2048) {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[key] = v
	sh.mu.Unlock()
}

// identityViews caches per identity what the hot paths derive from it: the
// decoded traits (for placeholders and assertions, only when asked for). An entry is valid while the store
// hands out the same *Identity (UpdateIdentity replaces it), so it never
// serves stale data. Bounded (32768 identities); eviction is random.
type identityViews struct {
	m boundedMap[*identityView]
}

// identityView is what is derived from one stored version of an identity.
type identityView struct {
	ident *sessionstore.Identity

	traitsOnce sync.Once
	traits     map[string]any
	traitsErr  error

	// factors: the second factors it can use (sharedIdentityFactors).
	factorsOnce sync.Once
	factors     FactorSet
}

// get returns the view of ident, creating it if the cached one is of
// another version.
func (v *identityViews) get(ident *sessionstore.Identity) *identityView {
	if iv, ok := v.m.load(ident.ID); ok && iv.ident == ident {
		return iv
	}
	iv := &identityView{ident: ident}
	v.m.store(ident.ID, iv)
	return iv
}
