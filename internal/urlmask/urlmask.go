// Package urlmask keeps credentials out of the agent's own log lines: the
// userinfo and secret-looking query parameters of every URL are replaced
// with "xxxxx" (net/url's mark for a redacted password), wherever the URL
// appears — an attribute of its own, an error from net/http, a message.
// The agent's logger applies it to every attribute (ReplaceAttr), so no
// call site has to remember.
package urlmask

import (
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

const mask = "xxxxx"

// String returns the URL raw with its credentials masked: a password (the
// user name stays, it helps debugging), a user name without a password (it
// may be a token: https://TOKEN@host), and the values of query parameters
// whose names look secret. Text that does not parse as a URL is returned
// as it is, unless it holds "@" in what would be its authority, which is
// then masked whole.
func String(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return maskUnparsed(raw)
	}
	changed := false
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), mask)
		} else {
			u.User = url.User(mask)
		}
		changed = true
	}
	if u.RawQuery != "" {
		if q, ok := maskQuery(u.RawQuery); ok {
			u.RawQuery, changed = q, true
		}
	}
	if !changed {
		return raw
	}
	return u.String()
}

// maskQuery masks the values of secret-looking parameters in a raw query,
// keeping the rest byte for byte.
func maskQuery(raw string) (string, bool) {
	parts := strings.Split(raw, "&")
	changed := false
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if SecretName(name) {
			parts[i] = k + "=" + mask
			changed = true
		}
	}
	return strings.Join(parts, "&"), changed
}

// secretWords are parts of parameter, header and key names whose values
// are credentials: token, access_token, X-Amz-Security-Token, password,
// passwd, secret, client_secret, api_key, apikey, sig, signature,
// X-Amz-Signature, X-Amz-Credential, auth, authorization, session, key.
var secretWords = []string{"token", "pass", "secret", "key", "sig", "auth", "credential", "session", "pwd"}

// SecretName reports whether a query parameter (or header) name looks
// like it carries a credential.
func SecretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// maskUnparsed handles text url.Parse rejects (a bad escape after the
// credentials, say): everything between "://" and the last "@" before the
// path goes.
func maskUnparsed(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	auth := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		auth = rest[:i]
	}
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		rest = mask + rest[at:]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		if q, ok := maskQuery(rest[i+1:]); ok {
			rest = rest[:i+1] + q
		}
	}
	return scheme + "://" + rest
}

// urlInText finds URLs in free text (error messages quote them: Get
// "http://…": dial tcp …).
var urlInText = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// Text returns s with every URL in it masked.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, String)
}

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that masks URLs in the
// message and in every attribute: strings, errors, *url.URL and other
// values printed with %v.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); strings.Contains(s, "://") {
			a.Value = slog.StringValue(Text(s))
		}
	case slog.KindAny:
		var s string
		switch v := a.Value.Any().(type) {
		case *url.URL:
			s = v.String()
		case error:
			s = v.Error()
		case fmt.Stringer:
			s = v.String()
		default:
			return a
		}
		if strings.Contains(s, "://") {
			a.Value = slog.StringValue(Text(s))
		}
	}
	return a
}
