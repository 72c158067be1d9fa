package shipper

import (
	"bytes"
	"regexp"
	"regexp/syntax"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/internal/config"
)

// redacted replaces a secret; it is visible on purpose, so that a reader of
// the logs knows a value was there and was removed by the agent.
const redacted = "[REDACTED]"

// builtinRules are the secret forms Flink deployments leak into logs. Each
// has trigger literals: the regexp only runs on events containing one of
// them, which keeps redaction off the profile for ordinary lines. A
// trigger is matched as-is, so case variants are listed explicitly.
var builtinRules = []struct {
	name     string
	re       string
	repl     string
	triggers []string
}{
	// AWS access key ids: AKIA (long-term) and ASIA (STS) + 16 characters.
	{"aws_access_key_id", `\b(AKIA|ASIA)[A-Z0-9]{16}\b`, "${1}" + redacted, []string{"AKIA", "ASIA"}},
	// Flink's S3 filesystems: s3.access-key / s3.secret-key (also as
	// s3.access.key), in "key: v", "key=v", JSON and Flink's
	// "Loading configuration property: key, v" forms.
	{"s3_access_key", `(?i)(\bs3\.access[-.]key"?\s*(?:[:=]|,)\s*"?)[^\s",;}]+`, "${1}" + redacted, []string{"s3.access", "S3.ACCESS"}},
	{"s3_secret_key", `(?i)(\bs3\.secret[-.]key"?\s*(?:[:=]|,)\s*"?)[^\s",;}]+`, "${1}" + redacted, []string{"s3.secret", "S3.SECRET"}},
	// Hadoop S3A: fs.s3a.secret.key and per-bucket fs.s3a.bucket.<b>.secret.key.
	{"s3a_secret_key", `(?i)(\bfs\.s3a\.(?:[\w.-]+\.)?secret\.key"?\s*(?:[:=]|,)\s*"?)[^\s",;}]+`, "${1}" + redacted, []string{"fs.s3a.", "FS.S3A."}},
	{"aws_secret_access_key", `(?i)(aws_secret_access_key"?\s*[:=]\s*"?)[^\s",;}]+`, "${1}" + redacted, []string{"ecret_access_key", "ECRET_ACCESS_KEY"}},
	// password=…, "password": "…", ssl.keystore.password: …, and Flink's
	// "property: security.ssl.key-password, …". A bare "password, " in
	// prose is left alone: only a config-style key takes the comma form.
	{"password", `(?i)((?:\b[\w-]+[.-])?\w*passw(?:or)?d[\w.-]*"?\s*[:=]\s*"?|\b[\w-]+(?:\.[\w-]+)*[.-]passw(?:or)?d[\w.-]*,\s*)[^\s",;}&]+`, "${1}" + redacted, []string{"assword", "ASSWORD", "asswd", "ASSWD"}},
	{"bearer_token", `(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*`, "${1}" + redacted, []string{"earer", "EARER"}},
	// user:password@ in URLs (JDBC sinks, Kafka SASL URLs, …).
	{"url_password", `(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#\s@]+:)[^@/?#\s]+@`, "${1}" + redacted + "@", []string{"://"}},
	// PEM private keys, also when the END line was cut off by the event cap.
	{"private_key", `-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)`, "-----BEGIN ${1}PRIVATE KEY-----" + redacted + "-----END ${1}PRIVATE KEY-----", []string{"PRIVATE KEY-----"}},
}

type redactRule struct {
	name     string
	re       *regexp.Regexp
	repl     []byte
	triggers [][]byte // nil: always run
	count    prometheus.Counter
}

// redactor applies the rules in order. Its output buffers are reused, so
// the result is valid until the next call.
type redactor struct {
	rules []redactRule
	buf   [2][]byte
}

func newRedactor(cfg config.Redaction, m *metrics) *redactor {
	r := &redactor{}
	if !cfg.DisableBuiltin {
		for _, b := range builtinRules {
			rule := redactRule{name: b.name, re: regexp.MustCompile(b.re), repl: []byte(b.repl)}
			for _, t := range b.triggers {
				rule.triggers = append(rule.triggers, []byte(t))
			}
			r.rules = append(r.rules, rule)
		}
	}
	for _, u := range cfg.Rules {
		repl := u.Replacement
		if repl == "" {
			repl = redacted
		}
		rule := redactRule{name: u.Name, re: u.Regex.Regexp, repl: []byte(repl)}
		if lit := requiredLiteral(u.Regex.String()); lit != "" {
			rule.triggers = [][]byte{[]byte(lit)}
		}
		r.rules = append(r.rules, rule)
	}
	for i := range r.rules {
		r.rules[i].count = m.redactions.WithLabelValues(r.rules[i].name)
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

// apply returns ev with every rule applied; ev itself is never modified.
// The result is ev or one of two scratch buffers, valid until the next call.
func (r *redactor) apply(ev []byte) []byte {
	out, cur := ev, -1
	for i := range r.rules {
		rule := &r.rules[i]
		if rule.triggers != nil && !containsAny(out, rule.triggers) {
			continue
		}
		locs := rule.re.FindAllSubmatchIndex(out, -1)
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

func containsAny(b []byte, lits [][]byte) bool {
	for _, l := range lits {
		if bytes.Contains(b, l) {
			return true
		}
	}
	return false
}
