package shipper

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/flink-agent/flink-agent/internal/identity"
	"github.com/flink-agent/flink-agent/shipper/internal/loki"
)

// stream is where the events of a file group (x.log and its rotated
// files) go: their Loki stream and their component.
type stream struct {
	loki     *loki.Stream
	comp     int // index of the component in the metrics
	compName string
}

// stream returns the stream of the group whose live file is gpath.
func (s *Shipper) stream(gpath string) *stream {
	if st, ok := s.streams[gpath]; ok {
		return st
	}
	comp := s.opts.Identity.Component
	if comp == "" {
		comp = identity.ComponentFromFile(gpath)
	}
	labels := s.streamLabels(comp, filepath.Base(gpath))
	// Groups with the same labels share one stream, and so its clock.
	ls := s.lokiStreams[labels]
	if ls == nil {
		ls = loki.NewStream(labels)
		s.lokiStreams[labels] = ls
	}
	st := &stream{loki: ls, comp: s.m.component(comp), compName: comp}
	s.streams[gpath] = st
	return st
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// builtinLabels are set by the shipper; external labels cannot replace them.
var builtinLabels = []string{"cluster", "namespace", "pod", "component", "container", "filename"}

func externalLabels(m map[string]string) (string, error) {
	var b strings.Builder
	keys := make([]string, 0, len(m))
	for k := range m {
		if !labelName.MatchString(k) {
			return "", fmt.Errorf("loki.external_labels: invalid label name %q", k)
		}
		for _, bl := range builtinLabels {
			if k == bl {
				return "", fmt.Errorf("loki.external_labels: %q is set by the agent", k)
			}
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + "=" + strconv.Quote(m[k]) + "\x00")
	}
	return b.String(), nil
}

// streamLabels renders a group's Loki labels, sorted by name.
func (s *Shipper) streamLabels(component, filename string) string {
	id := s.opts.Identity
	type kv struct{ k, v string }
	all := []kv{
		{"cluster", id.Cluster}, {"namespace", id.Namespace}, {"pod", id.Pod},
		{"component", component}, {"container", s.opts.Logs.Container}, {"filename", filename},
	}
	for _, e := range strings.Split(s.extLabels, "\x00") {
		if k, v, ok := strings.Cut(e, "="); ok {
			u, _ := strconv.Unquote(v)
			all = append(all, kv{k, u})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].k < all[j].k })
	var b strings.Builder
	b.WriteByte('{')
	for _, e := range all {
		if e.v == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteString(", ")
		}
		b.WriteString(e.k + "=" + strconv.Quote(e.v))
	}
	b.WriteByte('}')
	return b.String()
}
