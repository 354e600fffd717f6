package identity

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"sort"
	"strings"
)

// commonPasswords is the sorted list of 8-byte SHA-256 prefixes of common
// leaked passwords (data/README.md says where it comes from).
//
//go:embed data/common_passwords.bin
var commonPasswords []byte

// IsCommonPassword reports whether password (case-insensitively) is on the
// embedded list.
func IsCommonPassword(password string) bool {
	h := sha256.Sum256([]byte(strings.ToLower(password)))
	key := h[:8]
	n := len(commonPasswords) / 8
	i := sort.Search(n, func(i int) bool { return bytes.Compare(commonPasswords[i*8:i*8+8], key) >= 0 })
	return i < n && bytes.Equal(commonPasswords[i*8:i*8+8], key)
}
