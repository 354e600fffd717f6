// Command gencommonpw builds flows/identity/data/common_passwords.bin from a list of
// leaked passwords ordered by frequency (a JSON array of strings).
//
// Source used: passwords.json of the npm package @zxcvbn-ts/language-common
// 4.1.3 (MIT, derived from zxcvbn's password frequency list). Fetch it with
// `npm pack @zxcvbn-ts/language-common@4.1.3` and run
//
//	go run ./scripts/gencommonpw package/src/passwords.json flows/identity/data/common_passwords.bin
//
// Output: the first 8 bytes of SHA-256 of every lower-cased password of at
// least 8 characters (shorter ones fail the length rule anyway), sorted and
// de-duplicated, so the binary carries no password in clear and a lookup is
// a binary search.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"unicode/utf8"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gencommonpw passwords.json out.bin")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var keys [][]byte
	for _, p := range list {
		if utf8.RuneCountInString(p) < 8 {
			continue
		}
		h := sha256.Sum256([]byte(strings.ToLower(p)))
		keys = append(keys, h[:8])
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	var out []byte
	for i, k := range keys {
		if i > 0 && bytes.Equal(k, keys[i-1]) {
			continue
		}
		out = append(out, k...)
	}
	if err := os.WriteFile(os.Args[2], out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d passwords, %d bytes\n", len(out)/8, len(out))
}
