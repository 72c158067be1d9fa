package testbed

import (
	"fmt"
	"testing"
)

func TestVersionsFile(t *testing.T) {
	all := versionsWith("all")
	if len(all) < 6 {
		t.Fatalf("flink-versions.txt lists %v", all)
	}
	for _, v := range all {
		if _, err := ParseVersion(v); err != nil {
			t.Error(err)
		}
	}
	if d := versionsWith("default"); len(d) != 1 {
		t.Errorf("default versions %v, want exactly one", d)
	}
	t.Setenv("FLINK_VERSION", "")
	for _, tc := range []struct{ env, want string }{
		{"", fmt.Sprint(append([]string{DefaultFlinkVersion()}, versionsWith("test")...))},
		{"test", fmt.Sprint(append([]string{DefaultFlinkVersion()}, versionsWith("test")...))},
		{"all", fmt.Sprint(all)},
		{"1.19.3, 2.0.2 1.19.3", "[1.19.3 2.0.2]"},
	} {
		t.Setenv("FLINK_VERSIONS", tc.env)
		if got := fmt.Sprint(CompatVersions()); got != tc.want {
			t.Errorf("FLINK_VERSIONS=%q: %s, want %s", tc.env, got, tc.want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
		bad  bool
	}{{"1.18.1", Version{1, 18}, false}, {"2.2", Version{2, 2}, false}, {"2", Version{}, true}, {"x.1", Version{}, true}} {
		got, err := ParseVersion(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseVersion(%q) = %v, %v", tc.in, got, err)
		}
	}
	v, _ := ParseVersion("1.19.3")
	if !v.AtLeast(1, 19) || v.AtLeast(1, 20) || !v.AtLeast(1, 18) || v.AtLeast(2, 0) {
		t.Errorf("AtLeast wrong for %v", v)
	}
}
