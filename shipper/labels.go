package shipper

import (
	"path/filepath"
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

// label is one Loki stream label.
type label struct{ name, value string }

func sortedLabels(m map[string]string) []label {
	ls := make([]label, 0, len(m))
	for k, v := range m {
		ls = append(ls, label{k, v})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].name < ls[j].name })
	return ls
}

// streamLabels renders a group's Loki labels, sorted by name; empty
// values are left out.
func (s *Shipper) streamLabels(component, filename string) string {
	id := s.opts.Identity
	all := append([]label{
		{"cluster", id.Cluster}, {"namespace", id.Namespace}, {"pod", id.Pod},
		{"component", component}, {"container", s.opts.Logs.Container}, {"filename", filename},
	}, s.extLabels...)
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	var b strings.Builder
	b.WriteByte('{')
	for _, l := range all {
		if l.value == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteString(", ")
		}
		b.WriteString(l.name + "=" + strconv.Quote(l.value))
	}
	b.WriteByte('}')
	return b.String()
}
