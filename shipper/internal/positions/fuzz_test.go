package positions

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/flink-agent/flink-agent/shipper/internal/fingerprint"
)

// FuzzDecode: any positions file content is refused or read; what is read
// is written back, exactly as encoding/json would write it, and read
// again unchanged.
func FuzzDecode(f *testing.F) {
	w := NewWriter("", 0)
	f.Add(bytes.Clone(w.encode([]Entry{{Path: "/opt/flink/log/a.log", Dev: 2049, Inode: 131, Fingerprint: fingerprint.Fingerprint{Hash: 0xdeadbeef, N: 1024}, Offset: 77}})[23:]))
	f.Add([]byte(`{"version":1,"seq":3,"files":[{"path":"x","fingerprint":"zz","fingerprint_bytes":1,"offset":-1}]}`))
	f.Add([]byte(`{"version":1,"seq":18446744073709551615,"files":[{"path":"x","fingerprint":"ffffffffffffffff","fingerprint_bytes":99999999,"offset":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, _, err := decode(b)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Offset < 0 || e.Fingerprint.N < 0 || e.Fingerprint.N > fingerprint.Max {
				t.Fatalf("accepted %+v", e)
			}
		}
		var fes []fileEntry
		for _, e := range entries {
			fes = append(fes, fileEntryOf(e))
		}
		at := time.Unix(1764673623, 120000000).UTC()
		if got, want := appendFile(nil, 7, at, fes), referenceEncode(t, 7, at, fes); !bytes.Equal(got, want) {
			t.Fatalf("encoded\n%q\nencoding/json:\n%q", got, want)
		}
		again, _, err := decode(NewWriter("", 0).encode(entries)[23:])
		if err != nil || !reflect.DeepEqual(again, entries) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, entries, again)
		}
	})
}

// FuzzUnframe: any acknowledgement file content is refused or its body
// returned; a framed body always comes back.
func FuzzUnframe(f *testing.F) {
	f.Add([]byte("0000000a 2\n            {}"), []byte(`{"version":1}`))
	f.Add([]byte("ffffffff 9223372036854775807\n"), []byte{})
	f.Fuzz(func(t *testing.T, file, body []byte) {
		if b, ok := unframe(file); ok && len(b) > len(file) {
			t.Fatalf("body longer than the file")
		}
		framed := frame(append(make([]byte, 23), body...))
		framed[22] = '\n'
		if got, ok := unframe(framed); !ok || !bytes.Equal(got, body) {
			t.Fatalf("framed %q came back as %q, %v", body, got, ok)
		}
	})
}
