package redact

import (
	"bytes"
	"strings"
)

// prefilter finds which rules' trigger literals occur in an event in one
// pass over its bytes. Each trigger is anchored on a rare pair of its bytes
// (the "sw" of "passw", the "KI" of "AKIA"): a table of all 65,536 pairs
// says whether a pair is an anchor, and only then are the literals
// compared. Ordinary lines cost well under a nanosecond per byte, instead
// of one substring search per trigger. A case-insensitive trigger anchors
// on every case variant of its pair.
type prefilter struct {
	pairs [1 << 16]uint8 // 1 + index into lists, 0: not an anchor
	lists [][]trigger
}

type trigger struct {
	lit   []byte // lower case when fold
	off   int    // position of the anchor pair in lit
	fold  bool
	rules uint64 // bit i: rule i
}

func pair(a, b byte) uint16 { return uint16(a)<<8 | uint16(b) }

// add registers a trigger of rule; '|' in t.lit marks where its anchor
// pair starts (default: the first byte). A literal registered before only
// gains the rule. It reports false when the table is full.
func (p *prefilter) add(t trig, rule uint) bool {
	lit := t.lit
	off := strings.IndexByte(lit, '|')
	if off < 0 {
		off = 0
	} else {
		lit = lit[:off] + lit[off+1:]
	}
	if t.fold {
		lit = strings.ToLower(lit)
	}
	tr := trigger{lit: []byte(lit), off: off, fold: t.fold, rules: 1 << rule}
	for _, a := range p.cases(lit[off], t.fold) {
		for _, b := range p.cases(lit[off+1], t.fold) {
			i := p.list(pair(a, b))
			if i < 0 {
				return false
			}
			if !p.merge(i, tr) {
				p.lists[i] = append(p.lists[i], tr)
			}
		}
	}
	return true
}

// merge adds tr's rules to an equal trigger of list i, if there is one.
func (p *prefilter) merge(i int, tr trigger) bool {
	for j := range p.lists[i] {
		o := &p.lists[i][j]
		if o.fold == tr.fold && o.off == tr.off && bytes.Equal(o.lit, tr.lit) {
			o.rules |= tr.rules
			return true
		}
	}
	return false
}

// list returns the index of anchor pair c's list, creating it, or -1
// when there are as many lists as pairs can name.
func (p *prefilter) list(c uint16) int {
	if p.pairs[c] == 0 {
		if len(p.lists) == 255 {
			return -1
		}
		p.lists = append(p.lists, nil)
		p.pairs[c] = uint8(len(p.lists))
	}
	return int(p.pairs[c]) - 1
}

// cases returns c, and its other case when fold.
func (p *prefilter) cases(c byte, fold bool) []byte {
	if fold && lower[c] != upper[c] {
		return []byte{lower[c], upper[c]}
	}
	return []byte{c}
}

var lower, upper = func() (l, u [256]byte) {
	for i := range l {
		l[i], u[i] = byte(i), byte(i)
		if 'A' <= i && i <= 'Z' {
			l[i] = byte(i) + 'a' - 'A'
		}
		if 'a' <= i && i <= 'z' {
			u[i] = byte(i) - 'a' + 'A'
		}
	}
	return l, u
}()

// scanLines is scan over a multi-line event, skipping stack frames
// ("\tat …", "\t... N more"), which hold no secrets and most of the bytes.
func (p *prefilter) scanLines(ev []byte, from int) uint64 {
	var found uint64
	for from < len(ev) {
		end := bytes.IndexByte(ev[from:], '\n')
		if end < 0 {
			end = len(ev)
		} else {
			end += from
		}
		l := ev[from:end]
		if !(len(l) > 4 && l[0] == '\t' && (l[1] == 'a' && l[2] == 't' && l[3] == ' ' || l[1] == '.')) {
			found |= p.scan(l)
		}
		from = end + 1
	}
	return found
}

// scan returns the set of rules (bit i: rule i) whose triggers occur in b.
func (p *prefilter) scan(b []byte) uint64 {
	var found uint64
	tab := &p.pairs
	i := 0
	// Eight pairs per branch: most words hold no anchor at all.
	for ; i+9 <= len(b); i += 8 {
		w := b[i : i+9 : i+9]
		if tab[pair(w[0], w[1])]|tab[pair(w[1], w[2])]|tab[pair(w[2], w[3])]|tab[pair(w[3], w[4])]|
			tab[pair(w[4], w[5])]|tab[pair(w[5], w[6])]|tab[pair(w[6], w[7])]|tab[pair(w[7], w[8])] == 0 {
			continue
		}
		for j := i; j < i+8; j++ {
			if a := tab[pair(b[j], b[j+1])]; a != 0 {
				found |= p.match(b, j, a-1)
			}
		}
	}
	for ; i+1 < len(b); i++ {
		if a := tab[pair(b[i], b[i+1])]; a != 0 {
			found |= p.match(b, i, a-1)
		}
	}
	return found
}

// match compares the literals of list l's triggers at b[i].
func (p *prefilter) match(b []byte, i int, l uint8) uint64 {
	var found uint64
	for j := range p.lists[l] {
		t := &p.lists[l][j]
		s := i - t.off
		if s < 0 || s+len(t.lit) > len(b) {
			continue
		}
		w := b[s : s+len(t.lit)]
		if t.fold && equalFold(w, t.lit) || !t.fold && bytes.Equal(w, t.lit) {
			found |= t.rules
		}
	}
	return found
}

// equalFold compares b with the lower-case literal lit, ignoring ASCII case.
func equalFold(b, lit []byte) bool {
	for k, c := range lit {
		if lower[b[k]] != c {
			return false
		}
	}
	return true
}
