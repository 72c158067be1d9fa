// Package redact removes secrets from log events before anything leaves
// the pod: built-in rules for the forms Flink deployments leak (AWS, S3,
// S3A and Azure keys, passwords, secrets, tokens, API keys, Authorization
// headers, signatures, URL credentials, PEM private keys, prefixed tokens
// of GitHub, GitLab, Slack and Google, JWTs; see rules.go) and the user's
// own rules. A prefilter finds in one pass which rules' trigger words
// occur, so ordinary events never reach a regexp.
package redact

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
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

// New returns a redactor with the built-in rules (unless disabled) and
// then the user's; count gives each rule's counter, by name.
func New(cfg Settings, count func(rule string) Counter) *Redactor {
	r := &Redactor{}
	var triggers [][]trig
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
		triggers = append(triggers, required(u.Regex.String()))
	}
	for i := range r.rules {
		r.rules[i].count = count(r.rules[i].name)
		r.rules[i].filtered = i < 64 && len(triggers[i]) > 0
		for _, t := range triggers[i] {
			if r.rules[i].filtered && !r.pre.add(t, uint(i)) {
				r.rules[i].filtered = false
			}
		}
		if !r.rules[i].filtered {
			r.unfiltered = true
		}
	}
	return r
}

// required returns the trigger of a user's rule: a literal of two or
// more bytes every match starts with (ignoring case when the regexp does,
// for ASCII), or none when the rule must run on every event.
func required(expr string) []trig {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	for re.Op == syntax.OpConcat && len(re.Sub) > 0 || re.Op == syntax.OpCapture && len(re.Sub) == 1 {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpLiteral {
		return nil
	}
	lit := string(re.Rune)
	fold := re.Flags&syntax.FoldCase != 0
	if len(lit) < 2 || strings.Contains(lit, "|") || fold && strings.IndexFunc(lit, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0 {
		return nil
	}
	return trigs(fold, []string{lit})
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
		// A value Flink already masked ("s3.secret-key, ******"), null,
		// or one an earlier rule redacted is no secret: leave it.
		kept := locs[:0]
		for _, loc := range locs {
			if len(loc) < 4 || loc[3] < 0 || !notSecret(out[loc[3]:loc[1]]) {
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
