//go:build linux

package exepages

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyMapping(t *testing.T) {
	const exe = "/opt/flink agent/bin/flink-agent"
	for _, c := range []struct {
		line       string
		start, end uintptr
		ok         bool
	}{
		{"00400000-00a79000 r-xp 00000000 fe:00 10936933   " + exe, 0x400000, 0xa79000, true},
		{"00a79000-01177000 r--p 00679000 fe:00 10936933   " + exe, 0xa79000, 0x1177000, true},
		{"01177000-01207000 rw-p 00d77000 fe:00 10936933   " + exe, 0, 0, false}, // data: written
		{"7f00-8f00 r--s 00000000 fe:00 1   " + exe, 0, 0, false},                // shared
		{"7f00-8f00 r-xp 00000000 fe:00 1   /usr/lib/libc.so.6", 0, 0, false},    // another file
		{"7f00-8f00 r-xp 00000000 fe:00 1   " + exe + " (deleted)", 0, 0, false}, // replaced binary
		{"8f00-7f00 r-xp 00000000 fe:00 1   " + exe, 0, 0, false},                // garbage range
		{"01212000-03257000 rw-p 00000000 00:00 0", 0, 0, false},                 // anonymous
	} {
		s, e, ok := readOnlyMapping([]byte(c.line), exe)
		if s != c.start || e != c.end || ok != c.ok {
			t.Errorf("%q: got %#x-%#x %v, want %#x-%#x %v", c.line, s, e, ok, c.start, c.end, c.ok)
		}
	}
}

// exeRSS is the resident size of this executable's read-only mappings
// (smaps).
func exeRSS(t *testing.T) int64 {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var kb int64
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := sc.Text()
		if f := strings.Fields(l); len(f) > 0 && !strings.HasSuffix(f[0], ":") {
			_, _, in = readOnlyMapping([]byte(l), exe)
			continue
		}
		if v, ok := strings.CutPrefix(l, "Rss:"); ok && in {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			kb += n
		}
	}
	return kb << 10
}

// The test binary releases its own pages and keeps running: code and
// read-only data come back on use.
func TestRelease(t *testing.T) {
	before := exeRSS(t)
	n, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	after := exeRSS(t)
	t.Logf("released %d bytes of mappings; executable resident %d KiB before, %d KiB after", n, before>>10, after>>10)
	if n <= 0 {
		t.Fatalf("released %d bytes of mappings", n)
	}
	if after > before*3/4 {
		t.Errorf("executable resident %d KiB before, %d KiB after: expected most pages gone", before>>10, after>>10)
	}
	// Everything still works: formatting, maps, reflection-heavy code.
	var sb strings.Builder
	for i := range 1000 {
		sb.WriteString(strconv.Itoa(i))
	}
	if got := len(sb.String()); got != 2890 {
		t.Fatalf("len = %d", got)
	}
}
