package operatorlog

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/flink-agent/flink-agent/internal/labelvalue"
)

// FuzzOperatorLine: any line is the operator's layout or not, and a
// recognised trouble or not, without a panic; what is parsed lies in the
// line, and a trouble names a resource only from it.
func FuzzOperatorLine(f *testing.F) {
	files, _ := filepath.Glob("testdata/corpus/*/*.log")
	if len(files) == 0 {
		f.Fatal("no corpus in testdata/corpus")
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			f.Add(bytes.Clone(l))
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var h Header
		if !ParseHeader(line, &h) {
			return
		}
		for _, part := range [][]byte{h.Logger, h.Level, h.Namespace, h.Name, h.Message} {
			if !bytes.Contains(line, part) {
				t.Fatalf("%q is not in %q", part, line)
			}
		}
		tr, ok := Recognize(&h)
		if !ok {
			return
		}
		// The resource comes from the line, as a label value: capped and
		// made valid UTF-8.
		ns, name := string(h.Namespace), string(h.Name)
		if ns == "" && name == "" {
			ns, name = resourceIDIn(h.Message)
		}
		if !bytes.Contains(line, []byte(ns)) || !bytes.Contains(line, []byte(name)) {
			t.Fatalf("resource %q/%q is not in %q", ns, name, line)
		}
		if tr.Namespace != labelvalue.Cap(ns) || tr.Name != labelvalue.Cap(name) {
			t.Fatalf("resource labels %q/%q, want %q/%q", tr.Namespace, tr.Name, labelvalue.Cap(ns), labelvalue.Cap(name))
		}
	})
}
