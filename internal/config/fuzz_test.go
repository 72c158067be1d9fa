package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode: any configuration file is refused with an error naming what
// is wrong, or read and then validated, without a panic.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	files = append(files, "../../examples/flink-agent.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	env := func(k string) (string, bool) {
		if k == "FLINK_REST_URL" {
			return "http://jm:8081", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := Default()
		err := Decode(raw, &c, env)
		if err == nil {
			err = c.Validate()
		}
		var e *Error
		if err != nil && (!errors.As(err, &e) || e.Error() == "") {
			t.Fatalf("%T %v: not an error naming a key", err, err)
		}
	})
}
