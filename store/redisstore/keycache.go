package redisstore

import (
	"sync"
	"time"

	"github.com/stepup-auth/stepup/engine"
)

// keyCacheTTL bounds how long a process may trust a key it has seen
// should a revocation message be lost.
const keyCacheTTL = 2 * time.Second

// keyCache remembers found API keys for keyCacheTTL, so the hot path does
// not ask Redis (one slot for every request) who is calling.
type keyCache struct {
	mu  sync.Mutex
	m   map[string]cachedKey
	ids map[string]string // key id → hash, for KeyByID (an entry of m must back it)
}

type cachedKey struct {
	key engine.Key
	at  time.Time
}

func newKeyCache() *keyCache { return &keyCache{m: map[string]cachedKey{}, ids: map[string]string{}} }

func (c *keyCache) get(hash string) (engine.Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[hash]
	if !ok || time.Since(e.at) > keyCacheTTL {
		return engine.Key{}, false
	}
	return e.key, true
}

func (c *keyCache) put(hash string, key engine.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 10000 {
		clear(c.m)
		clear(c.ids)
	}
	c.m[hash] = cachedKey{key: key, at: time.Now()}
	c.ids[key.ID] = hash
}

// byID is the cached key of an id, while its hash's entry is fresh (a
// revocation evicts that entry).
func (c *keyCache) byID(id string) (engine.Key, bool) {
	c.mu.Lock()
	hash, ok := c.ids[id]
	c.mu.Unlock()
	if !ok {
		return engine.Key{}, false
	}
	return c.get(hash)
}

func (c *keyCache) evict(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, hash)
}
