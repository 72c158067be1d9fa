package positions

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// referenceEncode is what the positions file was before appendFile:
// encoding/json with SetIndent("", " ").
func referenceEncode(t testing.TB, seq uint64, at time.Time, fes []fileEntry) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	if err := enc.Encode(file{Version: version, Seq: seq, SavedAt: at, Files: fes}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// appendFile writes byte for byte what encoding/json does, for paths a
// hostile job can create: quotes, backslashes, control characters, HTML
// characters, invalid UTF-8, U+2028, characters beyond the BMP.
func TestEncodeMatchesJSON(t *testing.T) {
	paths := []string{
		"/opt/flink/log/flink--taskexecutor-0-tm.log", "", `a"b\c`, "tab\there\nnewline\r\b\f\x00\x01\x1f\x7f",
		"<script>&amp;</script>", "bad\xffutf8\xc3", "\xe2\x80\xa8line\xe2\x80\xa9sep", "日本語/ログ.log", "emoji 😀.log",
		"\xed\xa0\x80surrogate", "\xf4\x90\x80\x80beyond",
	}
	at := time.Date(2026, 12, 2, 11, 7, 3, 120000000, time.UTC)
	var fes []fileEntry
	for i, p := range paths {
		fes = append(fes, fileEntry{Path: p, Dev: uint64(i) << 40, Inode: ^uint64(i), Fingerprint: "deadbeef", FPBytes: i * 100, Offset: int64(i) - 1})
	}
	for _, c := range []struct {
		name string
		fes  []fileEntry
		at   time.Time
	}{
		{"nil", nil, at}, {"empty", []fileEntry{}, at}, {"one", fes[:1], at}, {"hostile paths", fes, at},
		{"whole second", fes[:2], at.Truncate(time.Second)}, {"max seq", fes[:1], at.Add(987654321)},
	} {
		for _, seq := range []uint64{0, 1, ^uint64(0)} {
			want := referenceEncode(t, seq, c.at, c.fes)
			if got := appendFile(nil, seq, c.at, c.fes); !bytes.Equal(got, want) {
				t.Errorf("%s, seq %d:\ngot  %q\nwant %q", c.name, seq, got, want)
			}
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	fes := []fileEntry{{Path: "/opt/flink/log/flink--taskexecutor-0-tm.log", Dev: 2049, Inode: 1234567, Fingerprint: "9f86d081884c7d65", FPBytes: 1024, Offset: 123456789}}
	at := time.Now()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendFile(buf[:0], 42, at, fes)
	}
}
