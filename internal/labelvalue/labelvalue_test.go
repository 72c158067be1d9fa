package labelvalue

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCap(t *testing.T) {
	short := "orders-enrichment"
	if Cap(short) != short {
		t.Errorf("Cap(%q) = %q", short, Cap(short))
	}
	exact := strings.Repeat("x", Max)
	if Cap(exact) != exact {
		t.Error("a value of exactly Max bytes changed")
	}
	a, b := strings.Repeat("é", 1<<19)+"a", strings.Repeat("é", 1<<19)+"b" // 1 MB each, one byte apart at the end
	ca, cb := Cap(a), Cap(b)
	for _, c := range []string{ca, cb} {
		if len(c) > Max || !utf8.ValidString(c) || !strings.HasPrefix(c, "éé") || !strings.Contains(c, "~") {
			t.Errorf("Cap of a 1 MB name = %q (%d bytes)", c, len(c))
		}
	}
	if ca == cb {
		t.Error("two long names sharing their beginning capped to the same value")
	}
	if Cap(a) != ca {
		t.Error("Cap is not stable")
	}
	if got := Cap("job\xff"); got != "job\uFFFD" {
		t.Errorf("invalid UTF-8: %q", got)
	}
}
