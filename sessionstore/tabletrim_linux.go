package sessionstore

import (
	"errors"

	"golang.org/x/sys/unix"
)

// tableTrimSupported: Linux has /proc/self/smaps and MADV_PAGEOUT (since
// 5.4; older kernels answer EINVAL and the trimmer turns itself off).
const tableTrimSupported = true

// madvisePageout is madvise(addr, n, MADV_PAGEOUT) on a range that need
// not be a Go slice (see tabletrim.go for why the range may no longer be
// a table's by the time of the call, and why that is harmless).
func madvisePageout(addr, n uintptr) error {
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, n, unix.MADV_PAGEOUT)
	switch {
	case errno == 0:
		return nil
	case errors.Is(errno, unix.EINVAL):
		return errPageoutUnsupported
	case errors.Is(errno, unix.ENOMEM):
		return nil // the range was unmapped meanwhile: nothing to page out
	}
	return errno
}
