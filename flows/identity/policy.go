package identity

import (
	"strings"
	"unicode/utf8"

	"github.com/caddy-kratos/caddy-kratos/flows/node"
)

// PolicyViolation applies Kratos's password rules and returns the message
// for the first one violated, nil when the password is acceptable.
// breachCheck looks the password up in the embedded list of common leaked
// passwords.
func PolicyViolation(password string, identifiers []string, breachCheck bool) *node.Text {
	const minLen, maxBytes = 8, 72
	n := utf8.RuneCountInString(password)
	if n < minLen {
		t := node.NewText(4000032, map[string]any{"min_length": minLen, "actual_length": n}, minLen, n)
		return &t
	}
	if len(password) > maxBytes {
		t := node.NewText(4000033, map[string]any{"max_length": maxBytes, "actual_length": len(password)}, maxBytes, len(password))
		return &t
	}
	for _, id := range identifiers {
		if tooSimilar(id, password) {
			t := node.NewText(4000031, nil)
			return &t
		}
	}
	if breachCheck && IsCommonPassword(password) {
		// Kratos reports a HaveIBeenPwned breach count; the offline list
		// only knows "found", reported as one breach.
		t := node.NewText(4000034, map[string]any{"breaches": 1})
		return &t
	}
	return nil
}

// tooSimilar is Kratos's identifier similarity rule: Levenshtein distance
// below 5, or a longest common substring covering over half the password.
func tooSimilar(identifier, password string) bool {
	a, b := strings.ToLower(identifier), strings.ToLower(password)
	if len(a) > 256 || len(b) > 256 {
		return false
	}
	if levenshtein(a, b) < 5 {
		return true
	}
	return float64(longestCommonSubstring(a, b))/float64(len(b)) > 0.5
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

func longestCommonSubstring(a, b string) int {
	best := 0
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			if a[i-1] == b[j-1] {
				cur[j] = prev[j-1] + 1
				if cur[j] > best {
					best = cur[j]
				}
			} else {
				cur[j] = 0
			}
		}
		prev, cur = cur, prev
	}
	return best
}
