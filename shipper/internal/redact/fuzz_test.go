package redact_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flink-agent/flink-agent/shipper/internal/redact"
	"github.com/flink-agent/flink-agent/shipper/internal/redact/redacttest"
)

// FuzzApply: any event, split anywhere into header and message, single- or
// multi-line: no panic, the input is left as it is, and two redactors
// agree (the scratch buffers carry nothing from one event to the next).
func FuzzApply(f *testing.F) {
	for _, tc := range redacttest.Corpus {
		f.Add([]byte(tc.In), uint16(len(redacttest.Header)), strings.Contains(tc.In, "\n"))
	}
	r1, _ := newCounted(redact.Settings{Rules: redacttest.UserRules}, prometheus.NewRegistry())
	r2, _ := newCounted(redact.Settings{Rules: redacttest.UserRules}, prometheus.NewRegistry())
	f.Fuzz(func(t *testing.T, ev []byte, from uint16, multiline bool) {
		if int(from) > len(ev) {
			from = uint16(len(ev))
		}
		in := bytes.Clone(ev)
		got := bytes.Clone(r1.Apply(ev, int(from), multiline))
		if !bytes.Equal(ev, in) {
			t.Fatalf("the input was modified: %q", ev)
		}
		r2.Apply([]byte("2024-05-01 12:00:00,123 INFO  x [] - password=warm-up-the-scratch-buffers"), 37, false)
		if again := r2.Apply(ev, int(from), multiline); !bytes.Equal(got, again) {
			t.Fatalf("two redactors disagree on %q:\n%q\n%q", ev, got, again)
		}
	})
}

// secretForms are the key forms of the built-in rules with %s where the
// value goes; any value made of the characters of keys, tokens and base64
// must disappear from every one of them.
var secretForms = []string{
	"password=%s to db", "Password: %s", `{"user":"flink","password":"%s"}`, `{\"password\":\"%s\"}`,
	"-Djavax.net.ssl.trustStorePassword=%s -Xmx1g", "--password %s --user x", "<password>%s</password>",
	"user%3Dx%26password%3D%s%26y%3D1", "Loading configuration property: security.ssl.key-password, %s",
	"Loading configuration property: s3.secret-key, %s", "s3.secret-key: %s", "-Ds3.secret-key=%s -Xss1m",
	"--s3.secret-key %s --x y", "s3.access-key=%s", "-Dfs.s3a.secret.key=%s",
	"<name>fs.s3a.bucket.b.secret.key</name>\n<value>%s</value>", "aws_secret_access_key = %s",
	`"SecretAccessKey":"%s"`, "secretAccessKey: %s", "aws_session_token=%s", `"SessionToken": "%s"`,
	"X-Amz-Security-Token=%s&x=1", "fs.azure.account.key.a.dfs.core.windows.net=%s", "AccountKey=%s;EndpointSuffix=x",
	"client.secret=%s", `"client_secret":"%s"`, "?token=%s&page=2", "api_key=%s", "X-Api-Key: %s",
	"Authorization: Basic %s", "Proxy-Authorization: Basic %s", "Authorization: Bearer %s", "authorization: %s",
	"Signature=%s", "?sv=1&sig=%s&x=1", "jdbc:postgresql://flink:%s@db:5432/app",
}

// FuzzSecretForms: whatever the secret, no form lets it through.
func FuzzSecretForms(f *testing.F) {
	for i := range secretForms {
		f.Add(uint8(i), "wJalrXUtnFEMI-K7MDENG+bPxRfiCY=")
	}
	f.Add(uint8(0), "AKIAIOSFODNN7EXAMPLE")
	r, _ := newCounted(redact.Settings{}, prometheus.NewRegistry())
	f.Fuzz(func(t *testing.T, form uint8, secret string) {
		tmpl := secretForms[int(form)%len(secretForms)]
		if len(secret) < 8 || strings.Trim(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+=_.-") != "" ||
			strings.EqualFold(secret, "null") || strings.Contains(redacttest.Header+tmpl+"[REDACTED]", secret) {
			t.Skip()
		}
		in := []byte(redacttest.Header + tmpl)
		in = bytes.Replace(in, []byte("%s"), []byte(secret), 1)
		ev := events(in)
		if len(ev) != 1 {
			t.Fatalf("%q is %d events", in, len(ev))
		}
		if got := r.Apply(ev[0].text, ev[0].msgStart, bytes.IndexByte(in, '\n') >= 0); bytes.Contains(got, []byte(secret)) {
			t.Fatalf("the secret %q got through:\n%s", secret, got)
		}
	})
}
