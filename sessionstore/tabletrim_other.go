//go:build !linux

package sessionstore

// tableTrimSupported: elsewhere there is no /proc/self/smaps, so the
// table pages stay mapped until the kernel needs the memory.
const tableTrimSupported = false

func madvisePageout(addr, n uintptr) error { return errPageoutUnsupported }
