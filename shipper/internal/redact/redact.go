// Package redact removes secrets from log events before anything leaves
// the pod: built-in rules for the forms Flink deployments leak (AWS keys,
// S3 and S3A secrets, passwords, bearer tokens, URL credentials, PEM
// private keys) and the user's own rules. A prefilter finds in one pass
// which rules' trigger words occur, so ordinary events never reach a
// regexp.
package redact

import (
	"bytes"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Settings are logs.redaction, validated by internal/config.
type Settings struct {
	DisableBuiltin bool // no built-in rules
	Rules          []Rule
}

// Rule replaces every match of Regex with Replacement (regexp.Expand
// syntax: ${1} is the first group).
type Rule struct {
	Name        string
	Regex       *regexp.Regexp
	Replacement string
}

// Counter counts a rule's replacements (a prometheus.Counter).
type Counter interface{ Add(float64) }

// redacted replaces a secret; it is visible on purpose, so that a reader of
// the logs knows a value was there and was removed by the agent.
const redacted = "[REDACTED]"

// builtinRules are the secret forms Flink deployments leak into logs. Each
// has trigger literals: the regexp only runs on events containing one of
// them, which keeps redaction off the profile for ordinary lines. A
// trigger is matched as-is, so case variants are listed explicitly; '|'
// marks its anchor byte (see prefilter), chosen among bytes that are rare
// in Flink messages and never hex digits (ids are hex).
var builtinRules = []struct {
	name     string
	re       string
	repl     string
	triggers []string
}{
	// AWS access key ids: AKIA (long-term) and ASIA (STS) + 16 characters.
	{"aws_access_key_id", `\b(AKIA|ASIA)[A-Z0-9]{16}\b`, "${1}" + redacted, []string{"A|KIA", "AS|IA"}},
	// Flink's S3 filesystems: s3.access-key / s3.secret-key (also as
	// s3.access.key), in "key: v", "key=v", JSON and Flink's
	// "Loading configuration property: key, v" forms.
	{"s3_access_key", `(?i)(\bs3\.access[-.]key"?\s*(?:[:=]|,)\s*"?)[^\s",;}]+`, "${1}" + redacted, []string{"access-ke|y", "access.ke|y", "ACCESS-KE|Y", "ACCESS.KE|Y"}},
	{"s3_secret_key", `(?i)(\bs3\.secret[-.]key"?\s*(?:[:=]|,)\s*"?)[^\s",;}]+`, "${1}" + redacted, []string{"secret-ke|y", "secret.ke|y", "SECRET-KE|Y", "SECRET.KE|Y"}},
	// Hadoop S3A: fs.s3a.secret.key and per-bucket fs.s3a.bucket.<b>.secret.key.
	{"s3a_secret_key", `(?i)(\bfs\.s3a\.(?:[\w.-]+\.)?secret\.key"?\s*(?:[:=]|,)\s*"?)[^\s",;}]+`, "${1}" + redacted, []string{"secret.ke|y", "SECRET.KE|Y"}},
	{"aws_secret_access_key", `(?i)(aws_secret_access_key"?\s*[:=]\s*"?)[^\s",;}]+`, "${1}" + redacted, []string{"access_ke|y", "ACCESS_KE|Y"}},
	// password=…, "password": "…", ssl.keystore.password: …, and Flink's
	// "property: security.ssl.key-password, …". A bare "password, " in
	// prose is left alone: only a config-style key takes the comma form.
	{"password", `(?i)((?:\b[\w-]+[.-])?\w*passw(?:or)?d[\w.-]*"?\s*[:=]\s*"?|\b[\w-]+(?:\.[\w-]+)*[.-]passw(?:or)?d[\w.-]*,\s*)[^\s",;}&]+`, "${1}" + redacted, []string{"pass|word", "pass|wd", "Pass|word", "Pass|wd", "PASS|WORD", "PASS|WD"}},
	{"bearer_token", `(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*`, "${1}" + redacted, []string{"|Bearer", "|BEARER", "authori|z", "Authori|z", "AUTHORI|Z"}},
	// user:password@ in URLs (JDBC sinks, Kafka SASL URLs, …).
	{"url_password", `(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#\s@]+:)[^@/?#\s]+@`, "${1}" + redacted + "@", []string{":|//"}},
	// PEM private keys, also when the END line was cut off by the event cap.
	{"private_key", `-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)`, "-----BEGIN ${1}PRIVATE KEY-----" + redacted + "-----END ${1}PRIVATE KEY-----", []string{"PRI|VATE KEY-----"}},
}

type redactRule struct {
	name     string
	re       *regexp.Regexp
	repl     []byte
	filtered bool // runs only when the prefilter saw one of its triggers
	count    Counter
}

// Redactor applies the rules in order. Its output buffers are reused, so
// the result is valid until the next call; it is not safe for concurrent
// use.
type Redactor struct {
	rules      []redactRule
	pre        prefilter
	unfiltered bool // a rule without triggers runs on every event
	buf        [2][]byte
}

// prefilter finds which rules' trigger literals occur in an event in one
// pass over its bytes. Each trigger is anchored on one of its rarer bytes
// (the 'K' of "AKIA", the 'w' of "passw"): a 256-entry table says whether
// a byte is an anchor, and only then are the literals compared. Ordinary
// lines cost well under a nanosecond per byte, instead of one substring
// search per trigger.
type prefilter struct {
	anchor [256]uint8 // 1 + index into lists, 0: not an anchor
	lists  [][]trigger
	// next and prev are, per list, the bytes that may follow or precede
	// the anchor in one of its triggers: most anchor hits ("y" of
	// "bytes") are rejected by one table lookup.
	next, prev [][256]bool
}

type trigger struct {
	lit   []byte
	off   int // position of the anchor byte in lit
	check int // position of a second byte compared before the literal
	rule  uint
}

// add registers a trigger; '|' in lit marks the anchor byte (default: the
// first).
func (p *prefilter) add(lit string, rule uint) {
	best := strings.IndexByte(lit, '|')
	if best < 0 {
		best = 0
	} else {
		lit = lit[:best] + lit[best+1:]
	}
	c := lit[best]
	if p.anchor[c] == 0 {
		p.lists = append(p.lists, nil)
		p.next = append(p.next, [256]bool{})
		p.prev = append(p.prev, [256]bool{})
		p.anchor[c] = uint8(len(p.lists))
	}
	i := p.anchor[c] - 1
	if best+1 < len(lit) {
		p.next[i][lit[best+1]] = true
	} else {
		p.next[i] = allBytes
	}
	if best > 0 {
		p.prev[i][lit[best-1]] = true
	} else {
		p.prev[i] = allBytes
	}
	check := best + 1
	if check == len(lit) {
		check = best - 1
	}
	p.lists[i] = append(p.lists[i], trigger{lit: []byte(lit), off: best, check: max(check, 0), rule: rule})
}

var allBytes = func() (t [256]bool) {
	for i := range t {
		t[i] = true
	}
	return t
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
	tab := &p.anchor
	i := 0
	// Eight bytes per branch: most words hold no anchor at all.
	for ; i+8 <= len(b); i += 8 {
		w := b[i : i+8 : i+8]
		if tab[w[0]]|tab[w[1]]|tab[w[2]]|tab[w[3]]|tab[w[4]]|tab[w[5]]|tab[w[6]]|tab[w[7]] == 0 {
			continue
		}
		for j := i; j < i+8; j++ {
			if a := tab[b[j]]; a != 0 {
				found |= p.match(b, j, a)
			}
		}
	}
	for ; i < len(b); i++ {
		if a := tab[b[i]]; a != 0 {
			found |= p.match(b, i, a)
		}
	}
	return found
}

// match checks the triggers of anchor list a at b[i].
func (p *prefilter) match(b []byte, i int, a uint8) uint64 {
	var found uint64
	l := a - 1
	if (i+1 >= len(b) || !p.next[l][b[i+1]]) && (i == 0 || !p.prev[l][b[i-1]]) {
		return 0
	}
	for j := range p.lists[l] {
		t := &p.lists[l][j]
		s := i - t.off
		if s < 0 || s+len(t.lit) > len(b) || b[s+t.check] != t.lit[t.check] {
			continue
		}
		if bytes.Equal(b[s:s+len(t.lit)], t.lit) {
			found |= 1 << t.rule
		}
	}
	return found
}

// New returns a redactor with the built-in rules (unless disabled) and
// then the user's; count gives each rule's counter, by name.
func New(cfg Settings, count func(rule string) Counter) *Redactor {
	r := &Redactor{}
	var triggers [][]string
	if !cfg.DisableBuiltin {
		for _, b := range builtinRules {
			r.rules = append(r.rules, redactRule{name: b.name, re: regexp.MustCompile(b.re), repl: []byte(b.repl)})
			triggers = append(triggers, b.triggers)
		}
	}
	for _, u := range cfg.Rules {
		repl := u.Replacement
		if repl == "" {
			repl = redacted
		}
		r.rules = append(r.rules, redactRule{name: u.Name, re: u.Regex, repl: []byte(repl)})
		var t []string
		if lit := requiredLiteral(u.Regex.String()); len(lit) >= 2 && !strings.Contains(lit, "|") {
			t = []string{lit}
		}
		triggers = append(triggers, t)
	}
	for i := range r.rules {
		r.rules[i].count = count(r.rules[i].name)
		if i < 64 && len(triggers[i]) > 0 {
			r.rules[i].filtered = true
			for _, t := range triggers[i] {
				r.pre.add(t, uint(i))
			}
		} else {
			r.unfiltered = true
		}
	}
	return r
}

// requiredLiteral returns a literal every match of a user's regexp starts
// with (case-sensitive), or "" when there is none and the rule must run on
// every event.
func requiredLiteral(expr string) string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return ""
	}
	re = re.Simplify()
	for re.Op == syntax.OpConcat && len(re.Sub) > 0 {
		re = re.Sub[0]
	}
	if re.Op == syntax.OpCapture && len(re.Sub) == 1 {
		return requiredLiteral(re.Sub[0].String())
	}
	if re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase == 0 {
		return string(re.Rune)
	}
	return ""
}

// Apply returns ev with every rule applied; ev itself is never modified.
// Triggers are looked for from scanFrom on (the message after the log4j
// header, where secrets can be); multiline: skip stack frames. The result
// is ev or one of two scratch buffers, valid until the next call.
func (r *Redactor) Apply(ev []byte, scanFrom int, multiline bool) []byte {
	var found uint64
	if multiline {
		found = r.pre.scanLines(ev, scanFrom)
	} else {
		found = r.pre.scan(ev[scanFrom:])
	}
	if found == 0 && !r.unfiltered {
		return ev
	}
	out, cur := ev, -1
	for i := range r.rules {
		rule := &r.rules[i]
		if rule.filtered && found&(1<<uint(i)) == 0 {
			continue
		}
		locs := rule.re.FindAllSubmatchIndex(out, -1)
		// A value Flink already masked ("s3.secret-key, ******") is no
		// secret: leave the line as it is.
		kept := locs[:0]
		for _, loc := range locs {
			if len(loc) < 4 || loc[3] < 0 || !masked(out[loc[3]:loc[1]]) {
				kept = append(kept, loc)
			}
		}
		locs = kept
		if len(locs) == 0 {
			continue
		}
		rule.count.Add(float64(len(locs)))
		w := 0
		if cur == 0 {
			w = 1
		}
		dst := r.buf[w][:0]
		last := 0
		for _, loc := range locs {
			dst = append(dst, out[last:loc[0]]...)
			dst = rule.re.Expand(dst, rule.repl, out, loc)
			last = loc[1]
		}
		dst = append(dst, out[last:]...)
		r.buf[w] = dst
		out, cur = dst, w
	}
	return out
}

// masked reports whether v is non-empty and all '*'.
func masked(v []byte) bool {
	for _, c := range v {
		if c != '*' {
			return false
		}
	}
	return len(v) > 0
}
