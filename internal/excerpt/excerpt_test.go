package excerpt

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBytesNeverSplitsARune(t *testing.T) {
	s := strings.Repeat("é€😀a", 50)
	for n := 0; n <= len(s)+1; n++ {
		got := Bytes(s, n)
		if len(got) > max(n, 0) || !utf8.ValidString(got) {
			t.Fatalf("Bytes(%d) = %d bytes, valid %v", n, len(got), utf8.ValidString(got))
		}
		if n < len(s) && n >= len(Marker) && !strings.HasSuffix(got, Marker) {
			t.Fatalf("Bytes(%d) has no marker: %q", n, got)
		}
	}
	if got := Bytes("short", 10); got != "short" {
		t.Errorf("Bytes of a short text changed it: %q", got)
	}
}

func TestRunes(t *testing.T) {
	s := strings.Repeat("ab€", 400)
	got := Runes(s, 1024)
	if utf8.RuneCountInString(got) != 1024 || !strings.HasSuffix(got, Marker) {
		t.Errorf("Runes: %d characters", utf8.RuneCountInString(got))
	}
	if Runes("abc", 3) != "abc" || Runes("abcd", 3) != "ab"+Marker {
		t.Errorf("Runes at the limit: %q %q", Runes("abc", 3), Runes("abcd", 3))
	}
}

func TestCutAndFirstLine(t *testing.T) {
	if got := Cut("aé", 2); got != "a" {
		t.Errorf("Cut = %q, want a", got)
	}
	if got := FirstLine("\n  java.io.IOException: boom \r\n\tat x.y(Z.java:1)\n"); got != "java.io.IOException: boom" {
		t.Errorf("FirstLine = %q", got)
	}
	if got := FirstLine(""); got != "" {
		t.Errorf("FirstLine of nothing = %q", got)
	}
}
