package testbed

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// jobSources are the test bed job's sources, which name its jar.
//
//go:embed flinkjob/pom.xml all:flinkjob/src
var jobSources embed.FS

// JobJar is the cached test bed job built by `scripts/tools.sh job` from
// this checkout's testbed/flinkjob: flinkjob-<version>-<hash of the
// sources>.jar. A jar built from other sources (another worktree, an older
// commit) is never taken for it.
func JobJar(version string) string {
	return filepath.Join(CacheDir(), "flinkjob-"+version+"-"+jobSourcesHash()+".jar")
}

// jobSourcesHash is what tools.sh computes with
// `find pom.xml src -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16`
// in testbed/flinkjob.
var jobSourcesHash = sync.OnceValue(func() string {
	var paths []string
	err := fs.WalkDir(jobSources, "flinkjob", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		panic(fmt.Sprintf("testbed: embedded job sources: %v", err)) // cannot happen: the files are in the binary
	}
	sort.Strings(paths) // byte order, as LC_ALL=C sort
	var list strings.Builder
	for _, p := range paths {
		b, err := jobSources.ReadFile(p)
		if err != nil {
			panic(fmt.Sprintf("testbed: embedded job sources: %v", err))
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(&list, "%s  %s\n", hex.EncodeToString(sum[:]), strings.TrimPrefix(p, "flinkjob/"))
	}
	sum := sha256.Sum256([]byte(list.String()))
	return hex.EncodeToString(sum[:])[:16]
})
