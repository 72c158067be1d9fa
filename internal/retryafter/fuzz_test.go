package retryafter

import (
	"testing"
	"time"
)

// FuzzParse: any header value is a wait of zero or more, or nothing.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"120", "0", "-5", "Wed, 21 Oct 2026 07:28:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "99999999999999999999", " 7 ", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 10, 21, 7, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d, ok := Parse(v, now); d < 0 || !ok && d != 0 {
			t.Fatalf("Parse(%q) = %v, %v", v, d, ok)
		}
	})
}
