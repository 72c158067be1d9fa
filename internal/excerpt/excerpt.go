// Package excerpt cuts text to fit a limit — a log attribute, a Datadog
// event, a PagerDuty summary, a label — never inside a UTF-8 sequence, and
// marks a cut with "…".
package excerpt

import (
	"strings"
	"unicode/utf8"
)

// Marker ends a cut text.
const Marker = "…"

// Bytes returns s if it has at most n bytes, else its start cut at a rune
// boundary and ended with Marker, at most n bytes in all.
func Bytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < len(Marker) {
		return Cut(s, n)
	}
	return Cut(s, n-len(Marker)) + Marker
}

// Runes returns s if it has at most n characters, else its first n-1
// characters and Marker.
func Runes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for i < len(s) && count < n-1 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	return s[:i] + Marker
}

// Cut returns the longest start of s with at most n bytes that ends at a
// rune boundary, without a marker (keys and identifiers).
func Cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// FirstLine is the first line of s without surrounding white space: the
// message of an exception, the start of an error body.
func FirstLine(s string) string {
	s = strings.TrimLeft(s, " \t\r\n")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
