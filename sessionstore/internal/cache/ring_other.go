//go:build !unix

package cache

// allocRing returns n bytes from the Go heap (a noscan object: the
// collector does not scan it, but it counts towards the heap goal).
func allocRing(n int) ([]byte, func()) { return make([]byte, n), nil }
