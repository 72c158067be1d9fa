package testbed

import (
	_ "embed"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// flinkVersions is testbed/flink-versions.txt, which scripts/tools.sh reads too.
//
//go:embed flink-versions.txt
var flinkVersions string

// versionsWith returns the versions of flink-versions.txt with that role
// ("default", "test"), or all of them for "all".
func versionsWith(role string) []string {
	var out []string
	for _, line := range strings.Split(flinkVersions, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if role == "all" || (len(f) > 1 && f[1] == role) {
			out = append(out, f[0])
		}
	}
	return out
}

// DefaultFlinkVersion is the Flink every test runs on unless FLINK_VERSION
// says otherwise (the newest 1.20 patch).
func DefaultFlinkVersion() string { return versionsWith("default")[0] }

// FlinkVersion is the Flink the test bed runs (FLINK_VERSION, as in tools.sh).
func FlinkVersion() string {
	if v := os.Getenv("FLINK_VERSION"); v != "" {
		return v
	}
	return DefaultFlinkVersion()
}

// CompatVersions are the Flink versions the compatibility test runs, from
// FLINK_VERSIONS as scripts/tools.sh reads it: "test" (the default: the
// default version and the newest 2.x, what `make test` runs), "all" (every
// version of testbed/flink-versions.txt, `make test-compat`), or a list.
func CompatVersions() []string {
	spec := strings.TrimSpace(os.Getenv("FLINK_VERSIONS"))
	var vs []string
	switch spec {
	case "", "test":
		vs = append([]string{FlinkVersion()}, versionsWith("test")...)
	case "all":
		vs = versionsWith("all")
	default:
		vs = strings.Fields(strings.ReplaceAll(spec, ",", " "))
	}
	seen := map[string]bool{}
	out := vs[:0]
	for _, v := range vs {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Version is a Flink version's major and minor number.
type Version struct{ Major, Minor int }

// ParseVersion reads "1.20.5" (or "2.2") as {1, 20}.
func ParseVersion(v string) (Version, error) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("flink version %q: want major.minor[.patch]", v)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return Version{}, fmt.Errorf("flink version %q: want major.minor[.patch]", v)
	}
	return Version{major, minor}, nil
}

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}
