package redact

import "strings"

// redacted replaces a secret; it is visible on purpose, so that a reader of
// the logs knows a value was there and was removed by the agent.
const redacted = "[REDACTED]"

// builtin is one built-in rule: its regexp, replacement and the trigger
// literals the prefilter looks for before the regexp runs.
type builtin struct {
	name     string
	re       string
	repl     string
	triggers []trig
}

// trig is a trigger literal; '|' marks where its anchor pair starts (see
// prefilter), a pair of bytes rare in Flink messages. fold: compared
// ignoring ASCII case.
type trig struct {
	lit  string
	fold bool
}

// ci makes case-insensitive triggers, cs case-sensitive ones.
func ci(lits ...string) []trig { return trigs(true, lits) }
func cs(lits ...string) []trig { return trigs(false, lits) }

func trigs(fold bool, lits []string) []trig {
	t := make([]trig, len(lits))
	for i, l := range lits {
		t[i] = trig{l, fold}
	}
	return t
}

// value is a secret value after its key: quoted (the quotes, groups 2 and
// 3, are kept around the replacement; a JSON string logged inside another
// one has \" quotes) or bare up to a delimiter; a bare URL-encoded value
// ends at %26 (&).
const value = `(?:(\\?")[^"\\\n]*\\?"|(')[^'\n]*'|(?:[^\s"'<>,;}&%\\]|%[^2\s]|%2[^6\s])+)`

// kvRepl keeps the key, the separator and the value's quotes.
const kvRepl = "${1}${2}${3}" + redacted + "${2}${3}"

// kv is the regexp of a secret assigned to a key, in every form logs show:
// key=v, key = v, key: v, "key": "v", \"key\":\"v\", -Dkey=v, --key v,
// key%3Dv (URL-encoded), <name>key</name><value>v</value> (Hadoop XML),
// <key>v</key>, and — for commaKey, the dotted form of the key — Flink's
// "Loading configuration property: key, v". start is what must precede a
// key that has no prefix of its own (a word boundary, or -D).
func kv(start, key, commaKey string) string {
	forms := []string{
		start + key + `\\?["']?\s*(?:[:=]|%3[dD])\s*`,
		`--` + key + `\s+`,
		`<name>\s*` + key + `\s*</name>\s*<value>\s*`,
		`<` + key + `>\s*`,
	}
	if commaKey != "" {
		forms = append(forms, start+commaKey+`,\s*`)
	}
	return `(?i)(` + strings.Join(forms, "|") + `)` + value
}

// boundary starts a key that has no prefix: a word boundary, or -D of a JVM
// system property (no word boundary between D and the key).
const boundary = `(?:\b|-D)`

// dotted is a key's prefix with at least one '.' or '-' in it, for the
// comma form (a bare "password, " in prose is left alone).
const dotted = `[\w-]*[.-][\w.-]*`

// builtinRules are the secret forms Flink deployments leak into logs, in
// the order they are applied. The README lists them. Keys are matched
// ignoring case.
var builtinRules = []builtin{
	// PEM private keys, also when the END line was cut off by the event
	// cap, and inside JSON strings (GCP service account keys).
	{"private_key", `-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)`,
		"-----BEGIN ${1}PRIVATE KEY-----" + redacted + "-----END ${1}PRIVATE KEY-----", cs("PRI|VATE KEY-----")},
	// AWS access key ids: AKIA (long-term) and ASIA (STS) + 16 characters.
	{"aws_access_key_id", `\b(AKIA|ASIA)[A-Z0-9]{16}\b`, "${1}" + redacted, cs("A|KIA", "AS|IA")},
	// Flink's S3 filesystems: s3.access-key / s3.secret-key (also as
	// s3.access.key), and Hadoop S3A's fs.s3a.secret.key, also per bucket
	// (fs.s3a.bucket.<b>.secret.key).
	{"s3_access_key", kv(boundary, `s3\.access[-.]key`, `s3\.access[-.]key`), kvRepl, ci("access|.key", "access|-key")},
	{"s3_secret_key", kv(boundary, `s3\.secret[-.]key`, `s3\.secret[-.]key`), kvRepl, ci("se|cret")},
	{"s3a_secret_key", kv(boundary, `fs\.s3a\.(?:[\w.-]+\.)?secret\.key`, `fs\.s3a\.(?:[\w.-]+\.)?secret\.key`), kvRepl, ci("se|cret")},
	// The AWS CLI/SDK: aws_secret_access_key, AWS_SECRET_ACCESS_KEY, JSON
	// SecretAccessKey/secretAccessKey, -Daws.secretAccessKey.
	{"aws_secret_access_key", kv(boundary, `(?:aws[._]?)?secret[._-]?access[._-]?key`, dotted+`secret[._-]?access[._-]?key`), kvRepl, ci("se|cret")},
	// Azure: fs.azure.account.key.<account>.<host>, AccountKey= and
	// SharedAccessKey= of connection strings.
	{"azure_account_key", kv(boundary, `(?:fs\.azure\.account\.key(?:\.[\w-]+)*|account[._]?key|sharedaccesskey)`, `fs\.azure\.account\.key(?:\.[\w-]+)*`), kvRepl,
		ci("account|.key", "account|_key", "accoun|tkey", "access|key")},
	// password=…, "password": "…", ssl.keystore.password: …, -D…Password=,
	// --password …, password%3D…, <password>…</password>, Flink's
	// "property: security.ssl.key-password, …".
	{"password", kv("", `[\w.-]*passw(?:or)?d[\w.-]*`, dotted+`passw(?:or)?d[\w.-]*`), kvRepl, ci("pas|sw")},
	// client.secret, client_secret, clientSecret, aws.secretKey, secret=.
	{"secret", kv("", `[\w.-]*secret(?:[._-]?key)?`, dotted+`secret(?:[._-]?key)?`), kvRepl, ci("se|cret")},
	// aws_session_token, SessionToken, X-Amz-Security-Token=, ?token=,
	// access_token, fs.s3a.session.token: every key ending in "token".
	{"token", kv("", `[\w.-]*token`, dotted+`token`), kvRepl, ci("to|ken")},
	// api_key=, apiKey, X-Api-Key:, DD_API_KEY=.
	{"api_key", kv("", `[\w.-]*api[._-]?key`, dotted+`api[._-]?key`), kvRepl, ci("ap|ikey", "api|_key", "api|-key", "api|.key")},
	{"bearer_token", `(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*`, "${1}" + redacted, append(cs("|Bearer", "|BEARER"), ci("authori|za")...)},
	// Authorization: Basic …, Proxy-Authorization: …, any scheme (the
	// SigV4 header's credential part; its Signature is the next rule's),
	// also Java's header maps (Authorization=[Basic …]).
	{"authorization", `(?i)(\b(?:proxy-)?authorization\\?["']?\s*[:=]\s*\\?["']?\[?(?:(?:basic|bearer|digest|negotiate|ntlm|token|aws4-hmac-sha256)\s+)?)(?:\[REDACTED\]|[^\s"'<>,;}\]\\])+`,
		"${1}" + redacted, ci("authori|za")},
	// AWS SigV4 (Signature=, X-Amz-Signature=) and Azure SAS (&sig=).
	{"signature", `(?i)(\bsignature\s*=\s*|[?&;]sig=)[^\s"'<>,;}&\\]+`, "${1}" + redacted, ci("si|gnature", "si|g=")},
	// user:password@ in URLs (JDBC sinks, Kafka SASL URLs, redis://:p@…).
	{"url_password", `(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#\s@]*:)[^@/?#\s]+@`, "${1}" + redacted + "@", cs("|://")},
	// Tokens recognised by their prefix.
	{"github_token", `\b((?:gh[pousr]|github_pat)_)[A-Za-z0-9_]{20,}`, "${1}" + redacted, cs("gh|p_", "gh|o_", "gh|u_", "gh|s_", "gh|r_", "githu|b_pat_")},
	{"gitlab_token", `\b(glpat-)[A-Za-z0-9_-]{20,}`, "${1}" + redacted, cs("|glpat-")},
	{"slack_token", `\b(xox[abposr]-)[A-Za-z0-9-]{10,}`, "${1}" + redacted, cs("|xox")},
	{"google_api_key", `\b(AIza)[0-9A-Za-z_-]{35}`, "${1}" + redacted, cs("|AIza")},
	{"jwt", `\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+`, redacted, cs("e|yJ")},
}

// notSecret reports whether a matched value holds nothing to hide: empty,
// masked by Flink (******) or Kafka ([hidden]), null, already redacted, or
// an unexpanded ${VAR} reference. Such lines are left as they are.
func notSecret(v []byte) bool {
	v = trimQuotes(v)
	switch {
	case len(v) == 0, string(v) == "[hidden]", strings.EqualFold(string(v), "null"),
		strings.HasPrefix(string(v), redacted[:len(redacted)-1]), strings.HasPrefix(string(v), "${"):
		return true
	}
	for _, c := range v {
		if c != '*' {
			return false
		}
	}
	return true
}

func trimQuotes(v []byte) []byte {
	for len(v) > 0 && (v[0] == '"' || v[0] == '\'' || v[0] == '\\') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == '"' || v[len(v)-1] == '\'' || v[len(v)-1] == '\\') {
		v = v[:len(v)-1]
	}
	return v
}
