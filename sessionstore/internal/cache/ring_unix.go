//go:build unix

package cache

import "syscall"

// allocRing returns n bytes of memory outside the Go heap (an anonymous
// mapping): the collector neither scans it nor counts it towards the heap
// goal, and the kernel backs a page only once it is written. The second
// result frees it; nil when the memory came from the Go heap.
func allocRing(n int) ([]byte, func()) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n), nil
	}
	return b, func() { _ = syscall.Munmap(b) }
}
