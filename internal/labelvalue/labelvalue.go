// Package labelvalue keeps the label values (and DogStatsD tag values) made
// of names that come from outside the agent — job names, exception classes,
// Kubernetes resource names read from logs — to a size a time series
// database and a dashboard can hold: a 1 MB job name must not make a 100 MB
// /metrics.
package labelvalue

import (
	"fmt"
	"hash/fnv"
	"strings"
	"unicode/utf8"
)

// Max is the longest value kept as it is, in bytes.
const Max = 128

// Cap returns s when it is at most Max bytes of valid UTF-8. A longer one
// is cut on a character boundary and ends in "~" and 8 hex digits of a hash
// of all of s (Max bytes in all), so that long names sharing a beginning
// stay apart; invalid UTF-8 becomes U+FFFD, as Prometheus requires.
func Cap(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= Max {
		return s
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	suffix := fmt.Sprintf("~%08x", h.Sum32())
	cut := Max - len(suffix)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + suffix
}
