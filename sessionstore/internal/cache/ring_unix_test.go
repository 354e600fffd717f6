//go:build linux && !race

package cache

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// vmSize is the process's virtual memory (kB) from /proc/self/status.
func vmSize(t *testing.T) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte("VmSize:")); ok {
			n, _ := strconv.Atoi(string(bytes.Fields(v)[0]))
			return n
		}
	}
	t.Skip("no VmSize")
	return 0
}

// TestRingsUnmapped: the rings of an unreachable cache are unmapped, and
// a reachable cache keeps serving throughout.
func TestRingsUnmapped(t *testing.T) {
	keep := NewCompact(1 << 20)
	_, gen, _ := keep.Get([]byte("k"), nil, never)
	keep.Put([]byte("k"), []byte("v"), 0, gen)
	before := vmSize(t)
	for range 8 {
		c := NewCompact(256 << 20)
		_, gen, _ := c.Get([]byte("k"), nil, never)
		c.Put([]byte("k"), []byte("v"), 0, gen)
	}
	grown := vmSize(t)
	if grown < before+(512<<10) {
		t.Skipf("VmSize grew from %d to %d kB only: the rings are not mappings here", before, grown)
	}
	deadline := time.Now().Add(10 * time.Second)
	for vmSize(t) > before+(256<<10) {
		if time.Now().After(deadline) {
			t.Fatalf("VmSize %d kB, %d before the caches: their rings stayed mapped", vmSize(t), before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if v, _, ok := keep.Get([]byte("k"), nil, never); !ok || string(v) != "v" {
		t.Fatal("the reachable cache lost its entry")
	}
}
